#!/usr/bin/env bash
# session 38, the short form: FoldedGemvTest on cuda:0, each folded GEMV old / new / depth 3, 8B int4 decode old / new / depth 3, then the references
set -u
AB_ARGS="bench kernels --device cuda:0 --graphs --only folded --seconds 0.2" AB_BUILDS="old new" bash scripts/gpu-check.sh abjar
mv "$OUT/abjar.log" "$OUT/abjar-folded.log"
AB_ARGS="bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 --input-len 128 --output-len 32 --kv-dtype f16 --quant int4 --variants ;cuda.matmul.q8_staged_depth=3;; --json" \
AB_BUILDS="old new" bash scripts/gpu-check.sh abjar
FOLDED_NCU="" FOLDED_VARIANTS="q8_staged_depth=3" FOLDED_TESTS=1 bash scripts/gpu-check.sh folded
DT_INT4_VARIANTS=";" DT_INT8_VARIANTS=";" bash scripts/gpu-check.sh decodetargets
