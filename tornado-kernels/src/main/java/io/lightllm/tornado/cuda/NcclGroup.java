package io.lightllm.tornado.cuda;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.MemorySegment;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * NCCL communicators for GPUs of one process, rank i on {@code devices.get(i)}, each rank driven
 * by its own thread. Every operation is queued on the rank's device stream like a kernel launch
 * (it returns before the data moves), so it orders with the rank's kernels, and a step captured
 * as a CUDA graph on each rank may contain it: the ranks' graphs then meet inside NCCL's kernels.
 * Each rank calls the operations in the same order, from its own thread: the first operation of
 * a communicator connects the ranks and blocks until every peer has called it too, so one thread
 * calling the ranks in turn would wait forever.
 */
public final class NcclGroup implements AutoCloseable {
    private final CudaDevice[] devices;
    private final int[] ordinals;
    private MemorySegment[] comms;
    /** Rank 0's landing area for the other ranks' blocks of a gather; grown as needed. */
    private CudaBuffer gatherScratch;

    private NcclGroup(CudaDevice[] devices, int[] ordinals) {
        this.devices = devices;
        this.ordinals = ordinals;
        this.comms = Nccl.commInitAll(ordinals);
    }

    /** Why NCCL cannot be used here (library missing or too old), if it cannot. */
    public static Optional<String> unavailableReason() {
        return Nccl.unavailableReason();
    }

    /**
     * Why NCCL cannot carry ranks on {@code devices}, if it cannot: a rank that is not a CUDA device, two ranks on one
     * GPU, or the library missing or too old.
     */
    public static Optional<String> unavailableReason(io.lightllm.tornado.runtime.Device[] devices) {
        Set<String> ids = new HashSet<>();
        for (io.lightllm.tornado.runtime.Device d : devices) {
            if (!(d instanceof CudaDevice)) {
                return Optional.of("rank device " + d.id() + " is not a CUDA device");
            }
            if (!ids.add(d.id())) {
                return Optional.of("NCCL needs one GPU per rank, " + d.id() + " carries two");
            }
        }
        return unavailableReason();
    }

    /** {@link #create} over ranks that {@link #unavailableReason(io.lightllm.tornado.runtime.Device[])} accepts. */
    public static NcclGroup over(io.lightllm.tornado.runtime.Device[] devices) {
        unavailableReason(devices).ifPresent(why -> {
            throw new IllegalArgumentException(why);
        });
        return create(java.util.Arrays.stream(devices).map(d -> (CudaDevice) d).toList());
    }

    /** The loaded library's version, e.g. {@code 2.27.7}. */
    public static String version() {
        return Nccl.version();
    }

    /**
     * Communicators over {@code devices}, which must be distinct GPUs (NCCL runs one rank per
     * GPU). Turns NVLink multicast off first (see {@link Nccl#disableMulticast}).
     */
    public static NcclGroup create(List<CudaDevice> devices) {
        unavailableReason().ifPresent(why -> {
            throw new IllegalStateException("NCCL is not available: " + why);
        });
        Set<Integer> seen = new HashSet<>();
        int[] ordinals = new int[devices.size()];
        for (int i = 0; i < ordinals.length; i++) {
            ordinals[i] = devices.get(i).ordinal();
            if (!seen.add(ordinals[i])) {
                throw new IllegalArgumentException("NCCL needs one GPU per rank; " + devices.get(i).id() + " appears twice");
            }
        }
        Nccl.disableMulticast();
        devices.getFirst().makeCurrent();
        return new NcclGroup(devices.toArray(CudaDevice[]::new), ordinals);
    }

    public int size() {
        return devices.length;
    }

    /** Replaces the first {@code elements} f32 values of {@code buffer} on every rank by their sum over the ranks. */
    public void allReduceSum(int rank, DeviceBuffer buffer, long elements) {
        CudaDevice d = devices[rank];
        long p = d.pointer(buffer, 0, elements * Float.BYTES, "all-reduce buffer");
        MemorySegment comm = comm(rank);
        d.onStream(() -> Nccl.allReduceSumF32(p, elements, comm, d.stream()));
    }

    /**
     * Concatenates the ranks' f32 blocks {@code [rows, columns[r]]} column-wise into rank 0's
     * {@code gathered} {@code [rows, sum of columns]}: the other ranks send their block to rank 0,
     * which receives them into scratch and places each with one strided copy.
     */
    public void gatherColumns(int rank, DeviceBuffer local, int rows, int[] columns, DeviceBuffer gathered) {
        CudaDevice d = devices[rank];
        long count = (long) rows * columns[rank];
        long localPointer = d.pointer(local, 0, count * Float.BYTES, "gather block");
        MemorySegment comm = comm(rank);
        if (rank != 0) {
            if (count > 0) {
                d.onStream(() -> Nccl.sendF32(localPointer, count, 0, comm, d.stream()));
            }
            return;
        }
        long total = 0;
        for (int c : columns) {
            total += c;
        }
        long rowPitch = total * Float.BYTES;
        d.pointer(gathered, 0, rows * rowPitch, "gathered buffer");
        long peers = (long) rows * (total - columns[0]);
        if (gatherScratch == null || gatherScratch.elements() < peers) {
            if (gatherScratch != null) {
                gatherScratch.close();
            }
            gatherScratch = d.allocateUninitialized(DType.F32, Math.max(peers, 1));
        }
        CudaBuffer scratch = gatherScratch;
        d.onStream(() -> {
            Nccl.groupStart();
            try {
                long at = 0;
                for (int r = 1; r < columns.length; r++) {
                    long n = (long) rows * columns[r];
                    if (n > 0) {
                        Nccl.recvF32(scratch.devicePointer() + at * Float.BYTES, n, r, comm, d.stream());
                    }
                    at += n;
                }
            } finally {
                Nccl.groupEnd();
            }
            d.copyRows(local, 0, (long) columns[0] * Float.BYTES, gathered, 0, rowPitch, (long) columns[0] * Float.BYTES, rows);
            long at = 0, column = columns[0];
            for (int r = 1; r < columns.length; r++) {
                long width = (long) columns[r] * Float.BYTES;
                d.copyRows(scratch, at * Float.BYTES, width, gathered, column * Float.BYTES, rowPitch, width, rows);
                at += (long) rows * columns[r];
                column += columns[r];
            }
        });
    }

    /**
     * Stops every rank's pending operations (a rank failed and its peers would wait for it
     * forever) and frees the communicators; {@link #reconnect} makes new ones.
     */
    public synchronized void abort() {
        if (comms != null) {
            onEachComm(comms, (rank, c) -> Nccl.commAbort(c));
            comms = null;
        }
    }

    /** New communicators after {@link #abort}. */
    public synchronized void reconnect() {
        if (comms == null) {
            devices[0].makeCurrent();
            comms = Nccl.commInitAll(ordinals);
        }
    }

    private synchronized MemorySegment comm(int rank) {
        if (comms == null) {
            throw new IllegalStateException("the NCCL communicators were aborted after a failed step");
        }
        return comms[rank];
    }

    @Override
    public synchronized void close() {
        if (gatherScratch != null) {
            gatherScratch.close();
            gatherScratch = null;
        }
        if (comms != null) {
            onEachComm(comms, (rank, c) -> Nccl.commDestroy(c));
            comms = null;
        }
    }

    private interface CommAction {
        void run(int rank, MemorySegment comm);
    }

    /**
     * Runs {@code action} for every rank's communicator at once, each on a thread of its own with
     * the rank's device current: tearing down communicators of one process one after another from
     * one thread may wait on the ranks not yet torn down.
     */
    private void onEachComm(MemorySegment[] all, CommAction action) {
        Thread[] threads = new Thread[all.length];
        RuntimeException[] failures = new RuntimeException[all.length];
        for (int r = 0; r < all.length; r++) {
            int rank = r;
            threads[r] = Thread.ofPlatform().name("nccl-teardown-" + r).start(() -> {
                try {
                    devices[rank].makeCurrent();
                    action.run(rank, all[rank]);
                } catch (RuntimeException e) {
                    failures[rank] = e;
                }
            });
        }
        for (Thread t : threads) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while tearing down NCCL communicators", e);
            }
        }
        for (RuntimeException e : failures) {
            if (e != null) {
                throw e;
            }
        }
    }
}
