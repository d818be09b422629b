package io.lightllm.tornado.cuda;

import static io.lightllm.tornado.cuda.CudaDriver.check;

import java.lang.foreign.MemorySegment;

/**
 * A captured and instantiated CUDA graph (see {@link CudaDevice#capture}): a fixed sequence of
 * launches that {@link #replay()} queues on the device's stream with one driver call, which is
 * what makes a decode step of hundreds of small kernels cheap to launch. Its arguments were
 * frozen at capture, so per-step values must live in device buffers.
 */
public final class CudaGraph implements io.lightllm.tornado.runtime.Device.Replay {
    private final CudaDevice device;
    private final MemorySegment graph;
    private final MemorySegment exec;
    private boolean closed;

    CudaGraph(CudaDevice device, MemorySegment graph, MemorySegment exec) {
        this.device = device;
        this.graph = graph;
        this.exec = exec;
    }

    public CudaDevice device() {
        return device;
    }

    /** Queues every captured launch on the device's stream (asynchronous, like a launch). */
    @Override
    public void replay() {
        device.onStream(() -> {
            if (closed) {
                throw new IllegalStateException("this CUDA graph is closed");
            }
            device.timed("cuda-graph", () -> check(CudaDriver.cuGraphLaunch(exec, device.stream()), "cuGraphLaunch on " + device.id()));
        });
    }

    @Override
    public void close() {
        device.onStream(() -> {
            if (!closed) {
                closed = true;
                check(CudaDriver.cuGraphExecDestroy(exec), "cuGraphExecDestroy");
                check(CudaDriver.cuGraphDestroy(graph), "cuGraphDestroy");
            }
        });
    }
}
