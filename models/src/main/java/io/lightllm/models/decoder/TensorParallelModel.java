package io.lightllm.models.decoder;

import io.lightllm.models.Models;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.infer.CausalLM;
import io.lightllm.models.infer.NopadBatch;
import io.lightllm.models.infer.RequestTokenTable;
import io.lightllm.models.infer.TokenKvPool;
import io.lightllm.models.parallel.RankGroup;
import io.lightllm.models.weights.WeightSource;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongConsumer;

/**
 * A decoder model split over several devices (Megatron-style tensor parallelism, see
 * docs/tensor-parallel.md): rank r runs a {@link DecoderModel} of its {@link Shard} on
 * device r, on a thread of its own, and the ranks meet in a {@link RankGroup} (NCCL on GPUs,
 * host memory otherwise).
 *
 * <p>To the engine it is one model on rank 0's device: {@link #newKvPool} returns rank 0's pool,
 * whose slot allocation is the one allocation of all ranks (the other ranks' pools of their kv
 * heads are storage at the same slot numbers), and the request table lives on rank 0's device;
 * the other ranks keep mirrors of it ({@link RequestTokenTable#mirrorTo}).
 */
public final class TensorParallelModel implements CausalLM {
    private final Device[] devices;
    private final ModelConfig config;
    private final DecoderModel[] ranks;
    private final RankGroup communicator;
    private final int[] vocabColumns;
    private final ExecutorService[] threads;
    private final Map<TokenKvPool, TokenKvPool[]> rankPools = new IdentityHashMap<>();
    private final Map<RequestTokenTable, RequestTokenTable[]> rankTables = new IdentityHashMap<>();
    private DeviceBuffer logits;
    private int logitsRows;

    /** Every rank places the same override rows (a vision model's image features) into its whole embeddings. */
    public void embeddingOverride(DecoderModel.EmbeddingOverride override) {
        for (DecoderModel rank : ranks) {
            rank.embeddingOverride(override);
        }
    }

    /** Rank 0 reports loading progress (it reads every tensor once); the others load quietly. */
    public TensorParallelModel(List<Device> devices, Architecture architecture, ModelConfig config, WeightSource source, Models.Quantization quant,
            LongConsumer onBytes) {
        if (devices.size() < 2) {
            throw new IllegalArgumentException("tensor parallelism needs at least two ranks, got " + devices.size());
        }
        this.devices = devices.toArray(Device[]::new);
        this.config = config;
        this.communicator = RankGroup.forDevices(this.devices);
        this.ranks = new DecoderModel[this.devices.length];
        this.threads = new ExecutorService[this.devices.length];
        try {
            for (int r = 0; r < ranks.length; r++) {
                Shard shard = Shard.of(config, communicator.rank(r));
                ranks[r] = new DecoderModel(this.devices[r], architecture, config, shard, source, quant, r == 0 ? onBytes : bytes -> { });
                int rank = r;
                threads[r] = Executors.newSingleThreadExecutor(task -> {
                    Thread t = new Thread(task, "tp-rank-" + rank);
                    t.setDaemon(true);
                    return t;
                });
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        // each rank's head holds its vocabulary rows: the column blocks of the logits gather, rank 0 first
        this.vocabColumns = Arrays.stream(ranks).mapToInt(DecoderModel::vocabSize).toArray();
    }

    public int worldSize() {
        return ranks.length;
    }

    /** What carries the collectives, e.g. "nccl 2.27.7" or "host memory". */
    public String communicator() {
        return communicator.describe();
    }

    @Override
    public Device device() {
        return devices[0];
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    /** Ranks on rank 0's memory: the same device id (every JVM device is {@code jvm}, in host memory). */
    @Override
    public int ranksSharingMemory() {
        int n = 0;
        for (Device d : devices) {
            n += d.id().equals(devices[0].id()) ? 1 : 0;
        }
        return n;
    }

    /** Rank 0's share: what each device holds, which is what sizing the KV pool from free memory needs. */
    @Override
    public long weightBytes() {
        return ranks[0].weightBytes();
    }

    @Override
    public int maxSequenceLength() {
        return ranks[0].maxSequenceLength();
    }

    @Override
    public DType preferredKvDtype() {
        return ranks[0].preferredKvDtype();
    }

    @Override
    public synchronized TokenKvPool newKvPool(int slots, DType dtype) {
        TokenKvPool[] pools = new TokenKvPool[ranks.length];
        for (int r = 0; r < ranks.length; r++) {
            pools[r] = ranks[r].newKvPool(slots, dtype);
        }
        TokenKvPool primary = pools[0];
        rankPools.put(primary, pools);
        primary.closeWith(() -> forget(rankPools, primary));
        return primary;
    }

    @Override
    public DeviceBuffer forward(NopadBatch batch, TokenKvPool pool, RequestTokenTable table) {
        TokenKvPool[] pools;
        RequestTokenTable[] tables;
        synchronized (this) {
            pools = rankPools.get(pool);
            if (pools == null) {
                throw new IllegalArgumentException("the KV pool was not made by this model's newKvPool");
            }
            tables = tablesOf(table);
            int rows = batch.logitRows();
            if (logits == null || logitsRows < rows) {
                if (logits != null) {
                    logits.close();
                }
                logits = devices[0].allocate(DType.F32, (long) rows * config.vocabSize());
                logitsRows = rows;
            }
        }
        Throwable failure = onEveryRank(rank -> {
            DeviceBuffer local = ranks[rank].forward(batch, pools[rank], tables[rank]);
            communicator.rank(rank).gatherColumns(local, batch.logitRows(), vocabColumns, rank == 0 ? logits : null);
        });
        if (failure != null) {
            // recorded steps hold collectives of the communicators that recover() replaces, and NCCL
            // cannot free a communicator while a CUDA graph still holds work of it: drop them first
            for (DecoderModel rank : ranks) {
                rank.closeRecordings();
            }
            communicator.recover();
            if (failure instanceof Error err) {
                throw err;
            }
            throw failure instanceof RuntimeException re ? re : new IllegalStateException(failure);
        }
        return logits;
    }

    private interface RankStep {
        void run(int rank);
    }

    /**
     * Runs {@code step} for every rank on the rank's thread and waits for all of them. Returns the
     * failure that came first (the cause; the ranks it woke from a collective fail after it), or null.
     */
    private Throwable onEveryRank(RankStep step) {
        List<Future<?>> running = new ArrayList<>();
        AtomicReference<Throwable> cause = new AtomicReference<>();
        for (int r = 0; r < ranks.length; r++) {
            int rank = r;
            running.add(threads[r].submit(() -> {
                try {
                    step.run(rank);
                } catch (RuntimeException | Error e) {
                    cause.compareAndSet(null, e);
                    communicator.abort(); // the others may wait for this rank in a collective
                    throw e;
                }
            }));
        }
        boolean interrupted = false;
        for (Future<?> f : running) { // every rank to its end, even when interrupted: none may run on unwatched
            while (true) {
                try {
                    f.get();
                    break;
                } catch (ExecutionException e) {
                    cause.compareAndSet(null, e.getCause());
                    break;
                } catch (InterruptedException e) {
                    interrupted = true;
                    cause.compareAndSet(null, new IllegalStateException("interrupted while the ranks ran a step", e));
                }
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        return cause.get();
    }

    /**
     * The table's mirrors on ranks 1..N-1, made the first time it is seen. Each step writes its
     * new tokens' slots into every mirror (the scatter of {@link DecoderModel}); the engine's own
     * writes (prompt sharing) reach them through {@link RequestTokenTable#writeRow}.
     */
    private RequestTokenTable[] tablesOf(RequestTokenTable table) {
        RequestTokenTable[] tables = rankTables.get(table);
        if (tables == null) {
            tables = new RequestTokenTable[ranks.length];
            tables[0] = table;
            for (int r = 1; r < ranks.length; r++) {
                tables[r] = new RequestTokenTable(devices[r], table.maxRequests(), table.maxLen());
                table.mirrorTo(tables[r]);
            }
            rankTables.put(table, tables);
            table.closeWith(() -> forget(rankTables, table));
        }
        return tables;
    }

    /** Closes what ranks 1..N-1 keep for a rank-0 pool or table that is being closed. */
    private synchronized <T extends AutoCloseable> void forget(Map<T, T[]> perRank, T primary) throws Exception {
        T[] all = perRank.remove(primary);
        if (all != null) {
            for (int r = 1; r < all.length; r++) {
                all[r].close();
            }
        }
    }

    @Override
    public synchronized void close() {
        for (ExecutorService t : threads) {
            if (t != null) {
                t.shutdownNow();
            }
        }
        for (TokenKvPool[] pools : rankPools.values()) {
            for (int r = 1; r < pools.length; r++) {
                pools[r].close();
            }
        }
        rankPools.clear();
        for (RequestTokenTable[] tables : rankTables.values()) {
            for (int r = 1; r < tables.length; r++) {
                tables[r].close();
            }
        }
        rankTables.clear();
        if (logits != null) {
            logits.close();
        }
        for (DecoderModel m : ranks) {
            if (m != null) {
                m.close();
            }
        }
        if (communicator != null) {
            communicator.close();
        }
    }
}
