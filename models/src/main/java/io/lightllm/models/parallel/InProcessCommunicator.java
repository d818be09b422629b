package io.lightllm.models.parallel;

import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Ranks as threads of one process, each with its own {@link Device} (or one device shared):
 * every collective stages the ranks' data in host memory ({@code device.read}), meets at a
 * barrier, combines, writes back ({@code device.write}) and meets again so that no rank reuses
 * the staging area while another still reads it. Simple and exact; it moves every byte through
 * the host, so it is the CPU and test path, not the fast one.
 */
public final class InProcessCommunicator implements RankGroup {
    private final Device[] devices;
    private final RankBarrier barrier;
    private final MemorySegment[] staging;
    private final Arena arena = Arena.ofShared();

    public InProcessCommunicator(Device[] devices) {
        if (devices.length == 0) {
            throw new IllegalArgumentException("a communicator needs at least one rank");
        }
        this.devices = devices.clone();
        this.barrier = new RankBarrier(devices.length);
        this.staging = new MemorySegment[devices.length];
    }

    @Override
    public Communicator rank(int r) {
        return new Rank(r);
    }

    /** Wakes ranks waiting for a rank that failed: they get an exception. */
    @Override
    public void abort() {
        barrier.breakAll();
    }

    @Override
    public void recover() {
        barrier.repair();
    }

    @Override
    public String describe() {
        return "host memory";
    }

    /** Frees the staging memory; call once no rank runs a collective any more. */
    @Override
    public void close() {
        arena.close();
    }

    private final class Rank implements Communicator {
        private final int rank;

        Rank(int rank) {
            this.rank = rank;
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int worldSize() {
            return devices.length;
        }

        @Override
        public void allReduceSum(DeviceBuffer buffer, int elements) {
            long bytes = (long) elements * Float.BYTES;
            MemorySegment mine = stage(bytes);
            devices[rank].read(buffer, 0, mine);
            await();
            MemorySegment sum = MemorySegment.ofArray(new float[elements]);
            for (int r = 0; r < staging.length; r++) { // rank order: the same bits on every rank
                for (int i = 0; i < elements; i++) {
                    long at = (long) i * Float.BYTES;
                    sum.set(ValueLayout.JAVA_FLOAT, at, sum.get(ValueLayout.JAVA_FLOAT, at) + staging[r].get(ValueLayout.JAVA_FLOAT_UNALIGNED, at));
                }
            }
            await();
            devices[rank].write(sum, buffer, 0);
        }

        @Override
        public void gatherColumns(DeviceBuffer local, int rows, int[] columns, DeviceBuffer gathered) {
            Communicator.requireGatheredOnRootOnly(rank, gathered);
            MemorySegment mine = stage((long) rows * columns[rank] * Float.BYTES);
            devices[rank].read(local, 0, mine);
            await();
            if (rank == 0) {
                int total = 0;
                for (int c : columns) {
                    total += c;
                }
                MemorySegment out = MemorySegment.ofArray(new float[rows * total]);
                int offset = 0;
                for (int r = 0; r < staging.length; r++) {
                    long rowBytes = (long) columns[r] * Float.BYTES;
                    for (int row = 0; row < rows; row++) {
                        MemorySegment.copy(staging[r], row * rowBytes, out, ((long) row * total + offset) * Float.BYTES, rowBytes);
                    }
                    offset += columns[r];
                }
                devices[0].write(out, gathered, 0);
            }
            await();
        }

        @Override
        public boolean recordable() {
            return false;
        }

        /** This rank's staging segment, grown to {@code bytes}; the others read it between barriers. */
        private MemorySegment stage(long bytes) {
            if (staging[rank] == null || staging[rank].byteSize() < bytes) {
                staging[rank] = arena.allocate(Math.max(bytes, 1), Float.BYTES);
            }
            return staging[rank].asSlice(0, bytes);
        }
    }

    private void await() {
        barrier.await();
    }
}
