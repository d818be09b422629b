package io.lightllm.models.parallel;

import io.lightllm.tornado.cuda.NcclGroup;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;

/**
 * Ranks on distinct GPUs of this process, one thread each, meeting in NCCL (libnccl.so.2 through
 * FFM, see {@link NcclGroup}): the collectives run on the GPUs and their links without the host,
 * and are queued on each rank's stream, so recorded decode steps may contain them.
 */
final class NcclCommunicator implements RankGroup {
    /** How long ranks may stay inside NCCL after another rank failed before their communicators are aborted. */
    static final long STUCK_MILLIS = 30_000;
    private final NcclGroup group;
    private final String version;
    private final Object lock = new Object();
    private boolean failed;
    private Thread watchdog;

    private NcclCommunicator(NcclGroup group) {
        this.group = group;
        this.version = NcclGroup.version();
    }

    static NcclCommunicator over(Device[] devices) {
        return new NcclCommunicator(NcclGroup.over(devices));
    }

    @Override
    public Communicator rank(int r) {
        return new Communicator() {
            @Override
            public int rank() {
                return r;
            }

            @Override
            public int worldSize() {
                return group.size();
            }

            @Override
            public void allReduceSum(DeviceBuffer buffer, int elements) {
                group.allReduceSum(r, buffer, elements);
            }

            @Override
            public void gatherColumns(DeviceBuffer local, int rows, int[] columns, DeviceBuffer gathered) {
                Communicator.requireGatheredOnRootOnly(r, gathered);
                group.gatherColumns(r, local, rows, columns, gathered);
            }

            @Override
            public boolean recordable() {
                return true;
            }
        };
    }

    /**
     * A rank failed. The others do not wait for it on the host (NCCL calls only queue work), so
     * they return and {@link #recover} aborts the communicators once no rank uses them. One wait
     * happens on the host, though: a communicator's first operation connects the ranks and blocks
     * until every rank makes it. Ranks still inside NCCL after {@link #STUCK_MILLIS} are stopped by
     * aborting the communicators under them.
     */
    @Override
    public void abort() {
        synchronized (lock) {
            if (failed) {
                return;
            }
            failed = true;
            watchdog = Thread.ofPlatform().daemon().name("nccl-stuck-rank-watchdog").start(() -> {
                try {
                    Thread.sleep(STUCK_MILLIS);
                } catch (InterruptedException e) {
                    return; // recovered in time
                }
                synchronized (lock) {
                    if (failed) {
                        group.abort();
                    }
                }
            });
        }
    }

    /**
     * After a failed step, once every rank has returned and the recorded steps are closed (NCCL
     * does not free a communicator while a CUDA graph holds work of it; an abort waits for them):
     * the failed step may have left collectives queued that wait for the rank that never came, so
     * the communicators are aborted (NCCL's kernels stop) and made anew.
     */
    @Override
    public void recover() {
        synchronized (lock) {
            if (!failed) {
                return;
            }
            watchdog.interrupt();
            group.abort();
            group.reconnect();
            failed = false;
        }
    }

    @Override
    public String describe() {
        return "nccl " + version;
    }

    @Override
    public void close() {
        group.close();
    }
}
