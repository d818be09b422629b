package io.lightllm.tornado.cuda;

import static io.lightllm.tornado.cuda.CudaDriver.check;

import java.lang.foreign.MemorySegment;

/**
 * Host/device copies through two page-locked (pinned) host buffers. Callers hand any memory
 * (heap arrays, mmap'd files); it is copied into a pinned chunk, which the DMA engine reads
 * asynchronously on the device's stream while the next chunk is filled. Pinned memory is what
 * makes cuMemcpy*Async truly asynchronous and stream-ordered. Used under the device's stream
 * lock; the context is current.
 */
final class PinnedStaging {
    static final long CHUNK_BYTES = 8L << 20;

    private static final class Chunk {
        MemorySegment host;
        MemorySegment doneEvent;
        boolean inFlight;
    }

    private final MemorySegment stream;
    private final Chunk[] chunks = {new Chunk(), new Chunk()};

    PinnedStaging(MemorySegment stream) {
        this.stream = stream;
    }

    private Chunk chunk(int i) {
        Chunk c = chunks[i];
        if (c.host == null) {
            c.host = CudaDriver.queryHandle("cuMemHostAlloc(" + CHUNK_BYTES + " bytes)", out -> CudaDriver.cuMemHostAlloc(out, CHUNK_BYTES, 0))
                    .reinterpret(CHUNK_BYTES);
            c.doneEvent = CudaDriver.queryHandle("cuEventCreate", out -> CudaDriver.cuEventCreate(out, CudaDriver.CU_EVENT_DISABLE_TIMING));
        }
        return c;
    }

    private static void await(Chunk c) {
        if (c.inFlight) {
            check(CudaDriver.cuEventSynchronize(c.doneEvent), "cuEventSynchronize (staging copy)");
            c.inFlight = false;
        }
    }

    private void recordDone(Chunk c) {
        check(CudaDriver.cuEventRecord(c.doneEvent, stream), "cuEventRecord (staging copy)");
        c.inFlight = true;
    }

    /** Copies all of {@code src} to device address {@code dst}. Returns once {@code src} may be reused. */
    void toDevice(MemorySegment src, long dst) {
        long n = src.byteSize();
        int next = 0;
        for (long pos = 0; pos < n; pos += CHUNK_BYTES) {
            long len = Math.min(CHUNK_BYTES, n - pos);
            Chunk c = chunk(next);
            next ^= 1;
            await(c);
            MemorySegment.copy(src, pos, c.host, 0, len);
            check(CudaDriver.cuMemcpyHtoDAsync(dst + pos, c.host, len, stream), "cuMemcpyHtoDAsync(" + len + " bytes)");
            recordDone(c);
        }
    }

    /** Fills all of {@code dst} from device address {@code src}, after the work queued before it. */
    void toHost(long src, MemorySegment dst) {
        long n = dst.byteSize();
        Chunk pending = null;
        long pendingPos = 0;
        long pendingLen = 0;
        int next = 0;
        for (long pos = 0; pos < n; pos += CHUNK_BYTES) {
            long len = Math.min(CHUNK_BYTES, n - pos);
            Chunk c = chunk(next);
            next ^= 1;
            await(c);
            check(CudaDriver.cuMemcpyDtoHAsync(c.host, src + pos, len, stream), "cuMemcpyDtoHAsync(" + len + " bytes)");
            recordDone(c);
            if (pending != null) {
                drain(pending, dst, pendingPos, pendingLen);
            }
            pending = c;
            pendingPos = pos;
            pendingLen = len;
        }
        if (pending != null) {
            drain(pending, dst, pendingPos, pendingLen);
        }
    }

    private static void drain(Chunk c, MemorySegment dst, long pos, long len) {
        await(c);
        MemorySegment.copy(c.host, 0, dst, pos, len);
    }

    void close() {
        for (Chunk c : chunks) {
            if (c.host != null) {
                await(c);
                CudaDriver.cuMemFreeHost(c.host);
                CudaDriver.cuEventDestroy(c.doneEvent);
                c.host = null;
            }
        }
    }
}
