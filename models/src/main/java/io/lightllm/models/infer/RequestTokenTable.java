package io.lightllm.models.infer;

import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.IntArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Rows of token slots on the device, one row per running request (LightLLM's
 * {@code req_to_token_indexs}): attention kernels find a request's K/V through its row. The
 * rows are written by the forward pass itself (the scatter of each step's new slots), and by
 * {@link #writeRow} for a request that shares another's prompt.
 */
public final class RequestTokenTable implements AutoCloseable {
    private final java.util.List<AutoCloseable> companions = new java.util.ArrayList<>();
    private final java.util.List<RequestTokenTable> mirrors = new java.util.concurrent.CopyOnWriteArrayList<>();
    private final DeviceBuffer table;
    private final int maxRequests;
    private final int maxLen;
    private final Deque<Integer> freeRows = new ArrayDeque<>();

    public RequestTokenTable(Device device, int maxRequests, int maxLen) {
        this.maxRequests = maxRequests;
        this.maxLen = maxLen;
        // one row more: the padding row, never handed out ({@link #paddingRow})
        this.table = device.allocate(DType.I32, (long) (maxRequests + 1) * maxLen);
        for (int r = 0; r < maxRequests; r++) {
            freeRows.add(r);
        }
    }

    /** A free row, or -1 when every row is in use. */
    public synchronized int acquire() {
        Integer r = freeRows.poll();
        return r == null ? -1 : r;
    }

    public synchronized void release(int row) {
        if (row < 0 || row >= maxRequests || freeRows.contains(row)) {
            throw new IllegalStateException("row " + row + " is not in use");
        }
        freeRows.addFirst(row);
    }

    public synchronized int freeRows() {
        return freeRows.size();
    }

    /**
     * Writes {@code slots} as the first tokens of {@code row}, here and in every mirror: how a
     * request that shares another's prompt gets its row without a forward pass.
     */
    public void writeRow(int row, int[] slots) {
        if (row < 0 || row >= maxRequests || slots.length > maxLen) {
            throw new IllegalArgumentException(slots.length + " slots do not fit row " + row + " of " + maxRequests + " x " + maxLen);
        }
        if (slots.length > 0) {
            table.device().write(IntArray.fromArray(slots).segment(), table, (long) row * maxLen * Integer.BYTES);
        }
        for (RequestTokenTable m : mirrors) {
            m.writeRow(row, slots);
        }
    }

    /**
     * Keeps {@code copy} (a tensor-parallel rank's table on its own device) equal to this one: it
     * gets this table's contents now and every {@link #writeRow} from now on; the forward pass
     * writes the steps' new slots into each rank's table itself.
     */
    public void mirrorTo(RequestTokenTable copy) {
        if (copy.maxRequests != maxRequests || copy.maxLen != maxLen) {
            throw new IllegalArgumentException("a mirror must have the same shape");
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = arena.allocate(table.byteSize(), Integer.BYTES);
            table.device().read(table, 0, all);
            copy.table.device().write(all, copy.table, 0);
        }
        mirrors.add(copy);
    }

    public DeviceBuffer buffer() {
        return table;
    }

    public int maxRequests() {
        return maxRequests;
    }

    /** A row past {@link #maxRequests} that no request gets: a recorded decode step's padding requests use it ({@link TokenKvPool#paddingSlot}). */
    public int paddingRow() {
        return maxRequests;
    }

    /** Tokens one request can hold (the row length). */
    public int maxLen() {
        return maxLen;
    }

    /**
     * Closes {@code companion} with this object: what a tensor-parallel model keeps on its other
     * ranks' devices beside this rank-0 object (their pools or copies of the table).
     */
    public synchronized void closeWith(AutoCloseable companion) {
        companions.add(companion);
    }

    @Override
    public void close() {
        table.close();
        for (AutoCloseable c : companions) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing a companion of " + this + " failed", e);
            }
        }
    }
}
