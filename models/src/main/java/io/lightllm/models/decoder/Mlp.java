package io.lightllm.models.decoder;

import io.lightllm.kernels.Activations;
import io.lightllm.kernels.Moe;
import io.lightllm.models.ModelLoadException;
import io.lightllm.models.Models;
import io.lightllm.models.config.ModelConfig;
import io.lightllm.models.decoder.Architecture.MlpSpec;
import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.runtime.Device;
import io.lightllm.tornado.runtime.DeviceBuffer;
import java.util.ArrayList;
import java.util.List;

/** The MLP blocks: the normed residual → s.projected, one rank's rows of the MLP, summed over the ranks. */
sealed interface Mlp {
    /** input: the normed residual of {@code tokens} rows, in {@link #inputType}. */
    void forward(StepBuffers s, DeviceBuffer input, int tokens);

    /** The type the first projection reads at {@code tokens} rows as it is ({@link Linear#inputType}); f32 for the experts' router. */
    default DType inputType(Device device, int tokens) {
        return DType.F32;
    }

    /** Whether a batch-1 step may fold the norm before this MLP into its input GEMV and the residual add into its output one. */
    default boolean folds(Device device) {
        return false;
    }

    /** Batch 1, where {@link #folds}: s.residual through {@code norm} → the MLP → added into s.residual. */
    default void forwardFolded(StepBuffers s, Norm norm) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " folds no norm into its GEMVs");
    }

    static Mlp load(MlpSpec spec, ModelConfig c, WeightLoader w, String prefix) {
        Activations.Kind act = Activations.Kind.fromConfig(c.hiddenAct().orElse("silu"));
        Shard shard = w.shard();
        int hidden = c.hiddenSize(), inter = c.intermediateSize();
        Range rows = new Range(shard.firstIntermediate(), shard.intermediate());
        return switch (spec) {
            case MlpSpec.Gated g -> {
                // gate and up as one projection [gate rows; up rows] where they share a format (one matmul, not two)
                Linear gateUp = w.stackedRows(List.of(new WeightLoader.RowsOf(prefix + g.gate(), inter, rows),
                        new WeightLoader.RowsOf(prefix + g.up(), inter, rows)), hidden);
                Linear down = w.columnSplit(prefix + g.down(), hidden, inter, rows);
                yield gateUp != null ? new Gated(w.device(), shard, act, gateUp, down)
                        : new GatedApart(w.device(), shard, act, w.rowSplit(prefix + g.gate(), inter, hidden, rows),
                                w.rowSplit(prefix + g.up(), inter, hidden, rows), down);
            }
            case MlpSpec.GatedStacked g -> new Gated(w.device(), shard, act,
                    w.stackedRows(List.of(new WeightLoader.RowsOf(prefix + g.gateUp(), 2 * inter, rows),
                            new WeightLoader.RowsOf(prefix + g.gateUp(), 2 * inter, rows.shifted(inter))), hidden),
                    w.columnSplit(prefix + g.down(), hidden, inter, rows));
            case MlpSpec.Plain p -> new Plain(w.device(), shard, act, w.rowSplit(prefix + p.fc(), inter, hidden, rows),
                    w.columnSplit(prefix + p.proj(), hidden, inter, rows));
            case MlpSpec.Experts e -> Experts.load(e, c, w, prefix, act, rows);
        };
    }

    /**
     * down(act(gate(x)) · up(x)), gate and up one projection of rows [gate; up] (vLLM's MergedColumnParallelLinear):
     * each token's row of s.gateUp holds its gate values, then its up values.
     */
    record Gated(Device device, Shard shard, Activations.Kind act, Linear gateUp, Linear down) implements Mlp {
        public void forward(StepBuffers s, DeviceBuffer input, int t) {
            // one launch for both projections and the activation where the weights' kernels have it (batch 1), else the
            // activation written in the type the down projection reads
            DeviceBuffer activated = s.act;
            if (!gateUp.applyGated(device, s.act, input, t, act)) {
                gateUp.apply(device, s.gateUp, input, t);
                activated = s.actIn(down.inputType(device, t));
                Activations.launchGatedFused(device, act, activated, s.gateUp, t, shard.intermediate());
            }
            down.apply(device, s.projected, activated, t);
            shard.allReduce(s.projected, t * down.outFeatures());
        }

        @Override
        public DType inputType(Device device, int tokens) {
            return gateUp.inputType(device, tokens);
        }

        @Override
        public boolean folds(Device device) {
            return (gateUp.folds(device, true) || gateUp.folds(device, false)) && down.folds(device, false) && !shard.sharded();
        }

        @Override
        public void forwardFolded(StepBuffers s, Norm norm) {
            if (gateUp.folds(device, true)) {
                gateUp.applyGatedFolded(device, s.act, s.residual, act, norm.fold());
            } else { // int8 and int4 rows: the projection folds the norm, the activation stays a launch of its own
                gateUp.applyFolded(device, s.gateUp, s.residual, norm.fold());
                Activations.launchGatedFused(device, act, s.act, s.gateUp, 1, shard.intermediate());
            }
            down.applyFolded(device, s.residual, s.act, io.lightllm.kernels.FoldedGemv.Fold.ADD);
        }
    }

    /** {@link Gated} where gate and up are stored in different formats (a GGUF file may mix block types): two projections. */
    record GatedApart(Device device, Shard shard, Activations.Kind act, Linear gate, Linear up, Linear down) implements Mlp {
        /** The two projections' outputs [tokens, intermediate], made on first use. */
        private record Scratch(DeviceBuffer gate, DeviceBuffer up) implements AutoCloseable {
            public void close() {
                gate.close();
                up.close();
            }
        }

        public void forward(StepBuffers s, DeviceBuffer input, int t) {
            Scratch scratch = s.blockScratch(Scratch.class, () -> new Scratch(device.allocate(DType.F32, (long) s.tokens * shard.intermediate()),
                    device.allocate(DType.F32, (long) s.tokens * shard.intermediate())));
            gate.apply(device, scratch.gate(), input, t);
            up.apply(device, scratch.up(), input, t);
            DeviceBuffer activated = s.actIn(down.inputType(device, t));
            Activations.launchGated(device, act, activated, scratch.gate(), scratch.up(), t, shard.intermediate());
            down.apply(device, s.projected, activated, t);
            shard.allReduce(s.projected, t * down.outFeatures());
        }

        @Override
        public DType inputType(Device device, int tokens) {
            return Linear.sharedInputType(device, tokens, gate, up);
        }
    }

    /** proj(act(fc(x))). */
    record Plain(Device device, Shard shard, Activations.Kind act, Linear fc, Linear proj) implements Mlp {
        public void forward(StepBuffers s, DeviceBuffer input, int t) {
            fc.apply(device, s.act, input, t);
            Activations.launchInPlace(device, act, s.act, t * shard.intermediate());
            proj.apply(device, s.projected, s.act, t);
            shard.allReduce(s.projected, t * proj.outFeatures());
        }

        @Override
        public DType inputType(Device device, int tokens) {
            return fc.inputType(device, tokens);
        }
    }

    /**
     * A top-k mixture of gated experts (Mixtral): the router is replicated, each rank holds its
     * rows of every expert, so the ranks' outputs sum as a dense MLP's do.
     */
    record Experts(Device device, Shard shard, Activations.Kind act, Linear router, Moe.Experts experts) implements Mlp {
        static Experts load(MlpSpec.Experts spec, ModelConfig c, WeightLoader w, String prefix, Activations.Kind act, Range rows) {
            ModelConfig.Moe moe = c.moe().orElseThrow(() -> new ModelLoadException(
                    "a mixture-of-experts model needs num_local_experts and num_experts_per_tok in its config"));
            if (w.quantization() != Models.Quantization.NONE) {
                throw new ModelLoadException("--quant " + w.quantization().name().toLowerCase(java.util.Locale.ROOT)
                        + " does not cover mixture-of-experts weights yet; load this model without it");
            }
            int hidden = c.hiddenSize(), inter = c.intermediateSize(), n = moe.numLocalExperts();
            List<String> gates = new ArrayList<>(), ups = new ArrayList<>(), downs = new ArrayList<>();
            for (int e = 0; e < n; e++) {
                String expert = prefix + spec.experts().formatted(e);
                gates.add(expert + spec.gate());
                ups.add(expert + spec.up());
                downs.add(expert + spec.down());
            }
            Range allHidden = Range.all(hidden), allInter = Range.all(inter);
            Moe.Experts experts = new Moe.Experts(w.stacked(gates, inter, hidden, rows, allHidden), w.stacked(ups, inter, hidden, rows, allHidden),
                    w.sideBySide(downs, hidden, inter, allHidden, rows), n, moe.numExpertsPerTok(), true, hidden, rows.count());
            return new Experts(w.device(), w.shard(), act, w.rowSplit(prefix + spec.router(), n, hidden, Range.all(n)), experts);
        }

        /** Routing scratch of a step: the router's logits and the grouping, shared by the layers. */
        private record Scratch(DeviceBuffer logits, Moe.Scratch routing) implements AutoCloseable {
            public void close() {
                logits.close();
                routing.close();
            }
        }

        public void forward(StepBuffers s, DeviceBuffer input, int t) {
            Scratch scratch = s.blockScratch(Scratch.class, () -> new Scratch(
                    device.allocate(DType.F32, (long) s.tokens * experts.numExperts()), Moe.Scratch.allocate(device, s.tokens, experts)));
            router.apply(device, scratch.logits(), input, t);
            Moe.launchMoe(device, s.projected, input, scratch.logits(), experts, scratch.routing(), act, t);
            shard.allReduce(s.projected, t * experts.hidden());
        }
    }
}
