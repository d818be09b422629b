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

    /**
     * {@code -Dlightllm.cuda.staging_shared=true}: copies of at most {@link #SMALL_BYTES} share a chunk, each at the next free
     * place in it, so that one need not wait for the one before. Off by default until a GPU measures it (docs/cuda.md): with
     * it off every copy starts at a chunk's start and so waits (cuEventSynchronize) for the copy before it from that chunk,
     * and a decode step's ten small uploads (ids, positions, slots, lengths...) are ten round trips while the GPU idles.
     */
    static final boolean SHARED = Boolean.getBoolean("lightllm.cuda.staging_shared");
    /** The largest copy that {@link #SHARED} packs into a shared chunk. */
    static final long SMALL_BYTES = 64L << 10;
    /** The chunk shared small copies go to now, and where in it the next one starts (CHUNK_BYTES: none yet, or reset). */
    private int smallChunk;
    private long smallFill = CHUNK_BYTES;

    /** Copies all of {@code src} to device address {@code dst}. Returns once {@code src} may be reused. */
    void toDevice(MemorySegment src, long dst) {
        long n = src.byteSize();
        if (SHARED && n <= SMALL_BYTES) {
            toDeviceShared(src, dst);
            return;
        }
        // (the loop below writes from each chunk's start: a small copy from there may still be pending, which await covers,
        // and what it starts is pending now, so the next small copy takes a chunk afresh)
        smallFill = CHUNK_BYTES;
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

    /**
     * A small copy at the next free place of the shared chunk: no wait unless the chunk is full, when the other one is taken
     * once every copy from it is done. Each copy records the chunk's event, so {@link #await} covers it wherever a chunk is
     * used from its start (the large copies, reads). A read leaves nothing pending, so shared copies go on after it.
     */
    private void toDeviceShared(MemorySegment src, long dst) {
        long n = src.byteSize();
        if (smallFill + n > CHUNK_BYTES) {
            smallChunk ^= 1;
            await(chunk(smallChunk));
            smallFill = 0;
        }
        Chunk c = chunk(smallChunk);
        MemorySegment.copy(src, 0, c.host, smallFill, n);
        check(CudaDriver.cuMemcpyHtoDAsync(dst, c.host.asSlice(smallFill, n), n, stream), "cuMemcpyHtoDAsync(" + n + " bytes, shared chunk)");
        recordDone(c);
        smallFill = (smallFill + n + 15) & ~15L; // the next copy 16-byte aligned
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
