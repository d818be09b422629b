package io.lightllm.kernels;

import static io.lightllm.testing.TensorAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.lightllm.testing.TensorAssert;
import io.lightllm.testing.TestProperties;
import io.lightllm.testing.TestDevices;
import io.lightllm.tornado.api.BFloat16Array;
import io.lightllm.tornado.api.ByteArray;
import io.lightllm.tornado.api.FloatArray;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import io.lightllm.tornado.runtime.Devices;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The batch-1 GEMVs with a norm or an add folded in ({@link FoldedGemv}) against the definition, in double precision:
 * y = W · (x ∘ g / rms(x)) + b, rms(x) = sqrt(mean x² + eps), and out + W · x + b, for bf16 weights, the gated [gate; up]
 * product, int8 rows and int4 blocks (with and without zero points), with the weights each kernel reads dequantised
 * exactly. The bound is f32 summation over k terms: 2^-23 (k + 4) times the sum of the terms' magnitudes. Teams of 64 items
 * (the local-memory reduction) and of 32 (the warp reduction), n = 37 (a partial last team of four rows).
 */
class FoldedGemvTest {
    private static final int N = 37, K = 256;
    private static final float EPS = 1e-5f;

    static Stream<String> devices() {
        return TestDevices.jvmAndAccelerators().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void foldedGemvsEqualTheDefinition(String id) {
        // the int8-activation GEMVs off (a run may turn them on for the whole JVM): the float GEMVs over int8 and int4 rows
        inTeamsOf64And32(id, false, false, FoldedGemvTest::checkAll);
    }

    /**
     * Runs {@code check} with the folds and the gated GEMV on, in teams of 64 items and of 32 ({@code reduce.local} 64, one
     * and two columns a group), the int8-activation GEMVs on where {@code q8} (and their folds) or off, staged where {@code staged}
     * ({@link StagedQ8Gemv}).
     */
    private static void inTeamsOf64And32(String id, boolean q8, boolean staged, java.util.function.BiConsumer<Device, String> check) {
        inTeamsOf64And32(id, q8, staged, 0, 2, check);
    }

    /**
     * The same, the staged int4 GEMVs' grid capped at {@code groupsPerUnit} groups a compute unit where it is not 0, their
     * weight streams {@code depth} steps deep ({@code matmul.q8_staged_depth}).
     */
    private static void inTeamsOf64And32(String id, boolean q8, boolean staged, int groupsPerUnit, int depth,
            java.util.function.BiConsumer<Device, String> check) {
        Device device = Devices.get(id);
        String backend = "lightllm.tuning." + Devices.backendName(id) + ".";
        String onInt8 = q8 ? "1" : "0";
        for (int columns : new int[] {1, 2}) {
            Map<String, String> tuning = new java.util.HashMap<>(Map.of(backend + "matmul.gemv_fold", "1", backend + "matmul.gemv_fold_q8", onInt8,
                    backend + "matmul.gemv_gated", "1", backend + "reduce.local", "64", backend + "matmul.gemv_columns", Integer.toString(columns),
                    backend + "matmul.int8_q8", onInt8, backend + "matmul.int4_q8", onInt8, backend + "matmul.q8_staged_int4", staged ? "1" : "0",
                    backend + "matmul.q8_staged_int8", staged ? "1" : "0", backend + "matmul.q8_staged_long_items_per_unit", "1048576"));
            tuning.put(backend + "matmul.q8_staged_groups_per_unit", Integer.toString(groupsPerUnit));
            tuning.put(backend + "matmul.q8_staged_depth", Integer.toString(depth));
            TestProperties.with(tuning, () -> check.accept(device, id + " teams of " + 64 / columns));
        }
    }

    private static void checkAll(Device device, String what) {
        FloatArray x = TensorAssert.random(K, 2f, 71);
        FloatArray g = TensorAssert.random(K, 1f, 72);
        FloatArray residual = TensorAssert.random(N, 1f, 73);
        FloatArray bias = TensorAssert.random(N, 0.5f, 74);
        double[] normed = rmsNorm(x, g);
        DeviceBuffer dx = device.upload(x), dg = device.upload(g), db = device.upload(bias);
        FoldedGemv.Fold norm = FoldedGemv.Fold.rmsNorm(dg, EPS);

        // bf16 weights: exactly the floats the kernel widens
        FloatArray wf = TensorAssert.random(N * K, 0.5f, 75);
        BFloat16Array w = BFloat16Array.allocate(N * K);
        double[] wd = new double[N * K];
        for (int i = 0; i < N * K; i++) {
            w.set(i, wf.get(i));
            wd[i] = w.get(i);
        }
        DeviceBuffer dw = device.upload(w);
        DeviceBuffer out = device.allocate(io.lightllm.tornado.api.DType.F32, N);
        FoldedGemv.launchFloat(device, out, dx, dw, db, N, K, norm);
        check(product(wd, normed, bias, null), out, what + " bf16 normed");
        device.write(residual.segment(), out, 0);
        FoldedGemv.launchFloat(device, out, dx, dw, db, N, K, FoldedGemv.Fold.ADD);
        check(product(wd, toDouble(x), bias, residual), out, what + " bf16 adding");

        // gated: rows [gate; up] of width N, silu(gate) * up
        int width = N;
        FloatArray gatedF = TensorAssert.random(2 * width * K, 0.5f, 76);
        BFloat16Array gated = BFloat16Array.allocate(2 * width * K);
        double[] gd = new double[2 * width * K];
        for (int i = 0; i < gd.length; i++) {
            gated.set(i, gatedF.get(i));
            gd[i] = gated.get(i);
        }
        DeviceBuffer gatedOut = device.allocate(io.lightllm.tornado.api.DType.F32, width);
        FoldedGemv.launchGated(device, gatedOut, dx, device.upload(gated), null, Activations.Kind.SILU, width, K, norm);
        check(silu(product(gd, normed, null, null)), gatedOut, what + " gated normed");

        // int8 rows with a scale each
        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(N * K, 0.5f, 77), N, K);
        double[] qd = int8Values(q, K);
        DeviceBuffer dq = device.upload(q.weights()), ds = device.upload(q.scales());
        FoldedGemv.launchInt8(device, out, dx, dq, ds, db, N, K, norm);
        check(product(qd, normed, bias, null), out, what + " int8 normed");
        device.write(residual.segment(), out, 0);
        FoldedGemv.launchInt8(device, out, dx, dq, ds, db, N, K, FoldedGemv.Fold.ADD);
        check(product(qd, toDouble(x), bias, residual), out, what + " int8 adding");

        // int4 blocks, centred and with zero points
        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            ByteArray blocks = QuantMatmulTest.randomBlocks(format, N, K, 78);
            double[] bd = toDouble(format.dequantize(blocks.segment(), N, K));
            DeviceBuffer dbk = device.upload(blocks);
            FoldedGemv.launchPacked(device, out, dx, dbk, format, db, N, K, norm);
            check(product(bd, normed, bias, null), out, what + " " + format + " normed");
            device.write(residual.segment(), out, 0);
            FoldedGemv.launchPacked(device, out, dx, dbk, format, null, N, K, FoldedGemv.Fold.ADD);
            check(product(bd, toDouble(x), null, residual), out, what + " " + format + " adding");
        }
    }

    /**
     * The int8-activation GEMVs with a fold ({@code matmul.gemv_fold_q8}): int8 rows (plain and the gated [gate; up]) and
     * int4 blocks with and without zero points. They round x ∘ g to int8 in groups (16 consecutive elements over int8
     * rows, a block's 128 over int4), so each row's bound adds every group's rounding: half its step (max |x g| / 127)
     * times the group's sum of |w|, times the norm's 1 / rms where the input is normed.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void int8ActivationFoldsEqualTheDefinition(String id) {
        inTeamsOf64And32(id, true, false, (device, what) -> checkInt8Activations(device, what, N, K));
    }

    /**
     * The same products with the activations staged in local memory first ({@link StagedQ8Gemv}): the same groups, so the
     * same bounds. k = 512 (fewer chunks than a group's items), 2,560 (three staging trips of 64 items, 20 blocks) and
     * 8,192 (a long row: its teams widened to the whole group by {@code matmul.q8_staged_long_items_per_unit}).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void stagedInt8ActivationFoldsEqualTheDefinition(String id) {
        for (int k : new int[] {512, 2560, 8192}) {
            inTeamsOf64And32(id, true, true, (device, what) -> {
                if (!StagedQ8Gemv.appliesInt8(device, k) || !StagedQ8Gemv.appliesInt4(device, QuantFormat.INT4, k)
                        || !StagedQ8Gemv.appliesInt4(device, QuantFormat.INT4_ZP, k)) {
                    throw new AssertionError(what + ": the staged GEMVs should apply at k = " + k);
                }
                checkInt8Activations(device, what + " staged, k = " + k, N, k);
            });
        }
    }

    /**
     * The staged int4 GEMVs with their grid capped at one group a compute unit ({@code matmul.q8_staged_groups_per_unit}),
     * so that each group takes several tiles of rows, its weight loads running on from one tile into the next: 1,100 rows
     * are 275 teams of four (138 gated teams of two outputs), more tiles than an H100's 132 groups, and k = 512 gives an
     * item of the 32-item teams one step of a row (its next loads are all in the next tiles), k = 5,120 five (of the 64-item
     * teams' items, two or three), so that some loads stay in a tile and some cross into the next; each with the weight
     * stream two and three steps deep (five steps a tile put the three-deep ring's slots on different steps in each tile).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void stagedInt4GroupsLoopingOverTilesEqualTheDefinition(String id) {
        for (int depth : new int[] {2, 3}) {
            for (int k : new int[] {512, 5120}) {
                inTeamsOf64And32(id, true, true, 1, depth, (device, what) -> checkInt8Activations(device,
                        what + " staged, one group a unit, k = " + k + ", " + depth + " steps deep", 1100, k));
            }
        }
        // 8 (u + 1) rows on u compute units: in teams of 32 (two a tile) u + 1 tiles, two for the busiest group; the balance
        // takes tiles of one team instead (2 u + 2 tiles, three for the busiest group, of half the rows)
        inTeamsOf64And32(id, true, true, 1, 2, (device, what) -> {
            int units = device.computeUnits();
            int n = 8 * (units + 1);
            if (what.endsWith("teams of 32") && units >= 2 && StagedQ8Gemv.int4Launch(device, n, 512, false).columns() != 1) {
                throw new AssertionError(what + ": " + n + " rows on " + units + " units should loop over tiles of one team");
            }
            checkInt8Activations(device, what + " staged, one group a unit, balanced tiles", n, 512);
        });
    }

    /**
     * The staged int4 q/k/v projection that does the split's work as its epilogue ({@link StagedQ8Gemv#int4SplitNormed},
     * {@code matmul.q8_staged_split}) against the projection with the split kernel after it ({@link KvCache#splitQkv}):
     * rotary over whole heads in halves (Llama's; its teams take two pairs of rows half a head apart), interleaved, and
     * none (ALiBi), int4 blocks with and without zero points, a bias, f32 and f16 pools, a group a tile and groups looping
     * over tiles (a group a compute unit). Each row's sum is the same arithmetic in both (a team's four rows meet the same
     * steps in the same order, whichever rows they are), so q, k, v and the pools must match exactly on the JVM, and off it
     * within a few f32 roundings (a compiler may contract a product and a sum into one rounding in one kernel and not the
     * other) and, in an f16 pool, one f16 rounding; the pools' other slots must keep what they held.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("devices")
    void stagedInt4ProjectionThatSplitsEqualsTheSplitAfterIt(String id) {
        String split = "lightllm.tuning." + Devices.backendName(id) + ".matmul.q8_staged_split";
        for (int groupsPerUnit : new int[] {0, 1}) {
            inTeamsOf64And32(id, true, true, groupsPerUnit, 2, (device, what) -> TestProperties.with(Map.of(split, "1"),
                    () -> checkSplit(device, what + (groupsPerUnit == 0 ? ", a group a tile" : ", a group a unit"))));
        }
    }

    private static void checkSplit(Device device, String what) {
        int qHeads = 4, kvHeads = 2, headDim = 32, k = 512, slots = 8, slot = 5;
        int n = (qHeads + 2 * kvHeads) * headDim, row = kvHeads * headDim;
        boolean jvm = device.id().startsWith("jvm");
        DeviceBuffer x = device.upload(TensorAssert.random(k, 2f, 91)), bias = device.upload(TensorAssert.random(n, 0.5f, 92));
        FoldedGemv.Fold norm = FoldedGemv.Fold.rmsNorm(device.upload(TensorAssert.random(k, 1f, 93)), EPS);
        DeviceBuffer positions = device.upload(io.lightllm.tornado.api.IntArray.fromArray(37));
        DeviceBuffer destIndex = device.upload(io.lightllm.tornado.api.IntArray.fromArray(slot));
        Attention.Heads heads = Attention.Heads.of(qHeads, kvHeads, headDim);
        DeviceBuffer invFreq = device.upload(RopeScaling.none(10000).inverseFrequencies(headDim, 0));
        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            DeviceBuffer blocks = device.upload(QuantMatmulTest.randomBlocks(format, n, k, 94));
            for (Rotary.Rope rope : new Rotary.Rope[] {new Rotary.Rope(invFreq, headDim, false, 1.25f), new Rotary.Rope(invFreq, headDim, true, 1f),
                    null}) {
                for (io.lightllm.tornado.api.DType pool : new io.lightllm.tornado.api.DType[] {io.lightllm.tornado.api.DType.F32,
                        io.lightllm.tornado.api.DType.F16}) {
                    String c = what + ", " + format + ", " + (rope == null ? "no rotary" : rope.interleaved() ? "interleaved" : "halves") + ", "
                            + pool + " pool";
                    io.lightllm.tornado.api.NativeArray initial = io.lightllm.tornado.api.NativeArray.allocate(pool, slots * row);
                    FloatArray random = TensorAssert.random(slots * row, 1f, 95);
                    for (int i = 0; i < slots * row; i++) {
                        initial.setFloat(i, random.get(i));
                    }
                    KvCache.QkvSplit[] splits = new KvCache.QkvSplit[2];
                    for (int i = 0; i < 2; i++) {
                        DeviceBuffer keys = device.upload(initial), values = device.upload(initial);
                        splits[i] = new KvCache.QkvSplit(device.allocate(io.lightllm.tornado.api.DType.F32, qHeads * headDim),
                                device.allocate(io.lightllm.tornado.api.DType.F32, row), device.allocate(io.lightllm.tornado.api.DType.F32, row),
                                positions, rope, keys, values, destIndex, heads);
                    }
                    if (!FoldedGemv.packedSplitApplies(device, format, k, splits[1])) {
                        throw new AssertionError(c + ": the projection should split its own output under this tuning");
                    }
                    DeviceBuffer qkv = device.allocate(io.lightllm.tornado.api.DType.F32, n);
                    FoldedGemv.launchPacked(device, qkv, x, blocks, format, bias, n, k, norm);
                    KvCache.launchSplitQkv(device, qkv, splits[0], 1);
                    FoldedGemv.launchPackedSplit(device, x, blocks, format, bias, k, norm, splits[1]);
                    // off the JVM a compiler may contract a product and a sum into one rounding in one kernel and not the other:
                    // a few f32 roundings of the values (relative 1e-6, 17 x 2^-24), and an f16 pool one f16 rounding more
                    float near = jvm ? 0f : 1e-6f, pooled = pool == io.lightllm.tornado.api.DType.F16 && !jvm ? 0x1p-10f : near;
                    assertClose(device.download(splits[0].q()), device.download(splits[1].q()), near, near, c + ": q");
                    assertClose(device.download(splits[0].k()), device.download(splits[1].k()), near, near, c + ": k");
                    assertClose(device.download(splits[0].v()), device.download(splits[1].v()), near, near, c + ": v");
                    io.lightllm.tornado.api.NativeArray keys = device.download(splits[1].keys()), values = device.download(splits[1].values());
                    assertClose(device.download(splits[0].keys()), keys, near, pooled, c + ": key pool");
                    assertClose(device.download(splits[0].values()), values, near, pooled, c + ": value pool");
                    for (int i = 0; i < slots * row; i++) {
                        boolean kept = keys.getFloat(i) == initial.getFloat(i) && values.getFloat(i) == initial.getFloat(i);
                        if (i / row != slot && !kept) {
                            throw new AssertionError(c + ": pool slot " + i / row + " changed");
                        }
                    }
                }
            }
        }
    }

    /** The looping groups' tiles at an 8B's shapes on an H100 at two groups of 256 items an SM (264 groups, 8 teams a tile). */
    @Test
    void balancedColumnsShareTheTilesOutEvenly() {
        long cap = 264;
        // [gate; up]: 896 tiles of 8 teams take the busiest group 4 (32 team-tiles), 1,792 of 4 take it 7 (28)
        assertEquals(4, StagedQ8Gemv.balancedColumns(14336, true, 8, cap));
        // the head: 4,008 tiles of 8 -> 16 (128), of 4 -> 31 (124, 3.1 % less), of 2 -> 61 (122, not 3 % less than 124)
        assertEquals(4, StagedQ8Gemv.balancedColumns(128256, false, 8, cap));
        // q/k/v: 192 tiles of 8, one round (768 of 2 in three rounds ran slower on an H100, session 37)
        assertEquals(8, StagedQ8Gemv.balancedColumns(6144, false, 8, cap));
        // o and down: 256 tiles of 4 teams, one round already
        assertEquals(4, StagedQ8Gemv.balancedColumns(4096, false, 4, cap));
    }

    private static void checkInt8Activations(Device device, String what, int n, int k) {
        if (!Matmul.int8ActivationsApply(device, 1, k) || !FoldedGemv.int8GatedApplies(device, k)
                || !FoldedGemv.packedGatedApplies(device, QuantFormat.INT4, k)) {
            throw new AssertionError(what + ": the int8-activation GEMVs and their folds should apply under this tuning");
        }
        FloatArray x = TensorAssert.random(k, 2f, 81);
        FloatArray g = TensorAssert.random(k, 1f, 82);
        FloatArray residual = TensorAssert.random(n, 1f, 83);
        FloatArray bias = TensorAssert.random(n, 0.5f, 84);
        double inv = 1 / Math.sqrt(sumOfSquares(x) / k + EPS);
        double[] xg = new double[k];
        for (int i = 0; i < k; i++) {
            xg[i] = x.get(i) * g.get(i);
        }
        DeviceBuffer dx = device.upload(x), db = device.upload(bias);
        FoldedGemv.Fold norm = FoldedGemv.Fold.rmsNorm(device.upload(g), EPS);
        DeviceBuffer out = device.allocate(io.lightllm.tornado.api.DType.F32, n);

        Matmul.Int8Weights q = Matmul.quantizeInt8(TensorAssert.random(n * k, 0.5f, 85), n, k);
        double[] qd = int8Values(q, k);
        DeviceBuffer dq = device.upload(q.weights()), ds = device.upload(q.scales());
        FoldedGemv.launchInt8(device, out, dx, dq, ds, db, n, k, norm);
        check(roundedProduct(qd, xg, inv, 16, bias, null), out, what + " int8 q8 normed");
        device.write(residual.segment(), out, 0);
        FoldedGemv.launchInt8(device, out, dx, dq, ds, db, n, k, FoldedGemv.Fold.ADD);
        check(roundedProduct(qd, toDouble(x), 1, 16, bias, residual), out, what + " int8 q8 adding");

        Matmul.Int8Weights gq = Matmul.quantizeInt8(TensorAssert.random(2 * n * k, 0.5f, 86), 2 * n, k);
        DeviceBuffer gatedOut = device.allocate(io.lightllm.tornado.api.DType.F32, n);
        FoldedGemv.launchInt8Gated(device, gatedOut, dx, device.upload(gq.weights()), device.upload(gq.scales()), null, Activations.Kind.SILU,
                n, k, norm);
        check(silu(roundedProduct(int8Values(gq, k), xg, inv, 16, null, null)), gatedOut, what + " int8 q8 gated normed");

        for (QuantFormat format : new QuantFormat[] {QuantFormat.INT4, QuantFormat.INT4_ZP}) {
            ByteArray blocks = QuantMatmulTest.randomBlocks(format, n, k, 87);
            double[] bd = toDouble(format.dequantize(blocks.segment(), n, k));
            DeviceBuffer dbk = device.upload(blocks);
            FoldedGemv.launchPacked(device, out, dx, dbk, format, db, n, k, norm);
            check(roundedProduct(bd, xg, inv, 128, bias, null), out, what + " " + format + " q8 normed");
            device.write(residual.segment(), out, 0);
            FoldedGemv.launchPacked(device, out, dx, dbk, format, null, n, k, FoldedGemv.Fold.ADD);
            check(roundedProduct(bd, toDouble(x), 1, 128, null, residual), out, what + " " + format + " q8 adding");
            ByteArray gatedBlocks = QuantMatmulTest.randomBlocks(format, 2 * n, k, 88);
            FoldedGemv.launchPackedGated(device, gatedOut, dx, device.upload(gatedBlocks), format, null, Activations.Kind.SILU, n, k, norm);
            check(silu(roundedProduct(toDouble(format.dequantize(gatedBlocks.segment(), 2 * n, k)), xg, inv, 128, null, null)), gatedOut,
                    what + " " + format + " q8 gated normed");
        }
    }

    private static double sumOfSquares(FloatArray x) {
        double squares = 0;
        for (int i = 0; i < x.getSize(); i++) {
            squares += (double) x.get(i) * x.get(i);
        }
        return squares;
    }

    private static double[] int8Values(Matmul.Int8Weights q, int k) {
        double[] d = new double[(int) q.weights().getSize()];
        for (int i = 0; i < d.length; i++) {
            d[i] = (double) q.weights().get(i) * q.scales().get(i / k);
        }
        return d;
    }

    /**
     * {@link #product} of w and x times {@code factor}, x rounded to int8 in aligned groups of {@code group} elements by
     * the kernel: each row's bound adds, for every group, half its step (max |x| / 127) times the group's sum of |w|, times
     * factor (the f32 bound scaled by factor too).
     */
    private static Expected roundedProduct(double[] w, double[] x, double factor, int group, FloatArray bias, FloatArray base) {
        Expected plain = product(w, x, null, null);
        int k = x.length;
        int rows = w.length / k;
        double[] y = new double[rows], bound = new double[rows];
        for (int j = 0; j < rows; j++) {
            double rounding = 0;
            for (int g0 = 0; g0 < k; g0 += group) {
                double most = 0, weights = 0;
                for (int i = g0; i < g0 + group; i++) {
                    most = Math.max(most, Math.abs(x[i]));
                    weights += Math.abs(w[j * k + i]);
                }
                rounding += most / 127 / 2 * weights;
            }
            y[j] = plain.values[j] * factor + (bias == null ? 0 : bias.get(j)) + (base == null ? 0 : base.get(j));
            bound[j] = (plain.bounds[j] + rounding * (1 + 0x1p-20)) * factor + 1e-6;
        }
        return new Expected(y, bound);
    }

    /**
     * silu(gate) * up over the [gate; up] halves of {@code both}; the bound carries through the product:
     * |d(silu(g) u)| <= (|u| (1.1) + |silu(g)|) times the sums' bounds.
     */
    private static Expected silu(Expected both) {
        int width = both.values.length / 2;
        double[] y = new double[width], bound = new double[width];
        for (int j = 0; j < width; j++) {
            double gate = both.values[j], up = both.values[width + j];
            y[j] = gate / (1 + Math.exp(-gate)) * up;
            bound[j] = (Math.abs(up) * 1.1 + Math.abs(gate)) * Math.max(both.bounds[j], both.bounds[width + j]) * 2 + 1e-6;
        }
        return new Expected(y, bound);
    }

    private static double[] rmsNorm(FloatArray x, FloatArray g) {
        double squares = 0;
        for (int i = 0; i < K; i++) {
            squares += (double) x.get(i) * x.get(i);
        }
        double inv = 1 / Math.sqrt(squares / K + EPS);
        double[] y = new double[K];
        for (int i = 0; i < K; i++) {
            y[i] = x.get(i) * inv * g.get(i);
        }
        return y;
    }

    private static double[] toDouble(FloatArray a) {
        double[] d = new double[(int) a.getSize()];
        for (int i = 0; i < d.length; i++) {
            d[i] = a.get(i);
        }
        return d;
    }

    private record Expected(double[] values, double[] bounds) { }

    /** rows · x (+ bias, + base) for every row of w, and each row's f32 summation bound. */
    private static Expected product(double[] w, double[] x, FloatArray bias, FloatArray base) {
        int k = x.length;
        int rows = w.length / k;
        double[] y = new double[rows], bound = new double[rows];
        for (int j = 0; j < rows; j++) {
            double sum = 0, magnitude = 0;
            for (int i = 0; i < k; i++) {
                sum += w[j * k + i] * x[i];
                magnitude += Math.abs(w[j * k + i] * x[i]);
            }
            y[j] = sum + (bias == null ? 0 : bias.get(j)) + (base == null ? 0 : base.get(j));
            bound[j] = Math.scalb(magnitude, -23) * (k + 4) + 1e-6; // (k + 4) roundings of 2^-24, twice over: the sums and the folded products
        }
        return new Expected(y, bound);
    }

    private static void check(Expected expected, DeviceBuffer out, String what) {
        FloatArray actual = (FloatArray) out.device().download(out);
        for (int j = 0; j < expected.values.length; j++) {
            double e = expected.values[j];
            if (!(Math.abs(actual.get(j) - e) <= expected.bounds[j])) {
                throw new AssertionError(what + ": element " + j + " is " + actual.get(j) + ", expected " + e + " within " + expected.bounds[j]);
            }
        }
    }
}
