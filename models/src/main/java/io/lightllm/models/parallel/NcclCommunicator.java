package io.lightllm.models.parallel;

import io.lightllm.tornado.cuda.CudaDevice;
import io.lightllm.tornado.cuda.NcclGroup;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.Arrays;

/**
 * Ranks on distinct GPUs of this process, one thread each, meeting in NCCL (libnccl.so.2 through
 * FFM, see {@link NcclGroup}): the collectives run on the GPUs and their links without the host,
 * and are queued on each rank's stream, so recorded decode steps may contain them.
 */
final class NcclCommunicator implements RankGroup {
    private final NcclGroup group;
    private final String version;

    private NcclCommunicator(NcclGroup group) {
        this.group = group;
        this.version = NcclGroup.version();
    }

    static NcclCommunicator over(Device[] devices) {
        return new NcclCommunicator(NcclGroup.create(Arrays.stream(devices).map(d -> (CudaDevice) d).toList()));
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
                if ((r == 0) != (gathered != null)) {
                    throw new IllegalArgumentException("rank 0, and only rank 0, passes the gathered buffer");
                }
                group.gatherColumns(r, local, rows, columns, gathered);
            }

            @Override
            public boolean recordable() {
                return true;
            }
        };
    }

    /** NCCL's kernels of a failed step would wait for the missing rank forever: abort them. */
    @Override
    public void abort() {
        group.abort();
    }

    @Override
    public void recover() {
        group.reconnect();
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
