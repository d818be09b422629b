package io.lightllm.models.parallel;

import io.lightllm.tornado.cuda.NcclGroup;
import io.lightllm.tornado.runtime.Device;
import java.util.Locale;

/**
 * The ranks of one tensor-parallel model and how they communicate: {@link NcclCommunicator} when
 * every rank has a GPU of its own and NCCL is there, else {@link InProcessCommunicator} (host
 * memory: the JVM and OpenCL devices, or several ranks on one device).
 * {@code -Dlightllm.tp.communicator=nccl|host} forces one (nccl fails with the reason when it cannot run).
 */
public interface RankGroup extends AutoCloseable {
    String PROPERTY = "lightllm.tp.communicator";

    /** The view of rank {@code r}, to be used from that rank's thread only. */
    Communicator rank(int r);

    /** A rank failed: the others must not wait for it forever. Called from the failing rank's thread. */
    void abort();

    /** Usable again after {@link #abort}, called once every rank has returned from the failed step. */
    void recover();

    /** What carries the collectives, for logs and benchmark reports (e.g. "nccl 2.27.7"). */
    String describe();

    @Override
    void close();

    static RankGroup forDevices(Device[] devices) {
        String choice = System.getProperty(PROPERTY, "auto").toLowerCase(Locale.ROOT);
        return switch (choice) {
            case "host" -> new InProcessCommunicator(devices);
            case "nccl" -> {
                NcclGroup.unavailableReason(devices).ifPresent(why -> {
                    throw new IllegalArgumentException("-D" + PROPERTY + "=nccl: " + why);
                });
                yield NcclCommunicator.over(devices);
            }
            case "auto" -> {
                if (NcclGroup.unavailableReason(devices).isPresent()) {
                    yield new InProcessCommunicator(devices);
                }
                try {
                    yield NcclCommunicator.over(devices);
                } catch (RuntimeException e) {
                    throw new IllegalStateException("NCCL could not connect the ranks: " + e.getMessage() + "; -D" + PROPERTY
                            + "=host runs them over host memory instead (slower)", e);
                }
            }
            default -> throw new IllegalArgumentException("-D" + PROPERTY + " must be auto, nccl or host (got '" + choice + "')");
        };
    }
}
