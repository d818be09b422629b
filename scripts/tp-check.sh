#!/usr/bin/env bash
# Tensor parallelism on two GPUs (nvidia-h100-x2): the same greedy text at tp 1 and tp 2, and 8B-shaped
# decode throughput. Runs from the packed .gpu/ folder (see scripts/gpu-check.sh and docs/cuda.md).
set -uo pipefail
cd "$(dirname "$0")/../.gpu" 2>/dev/null || cd "$(dirname "$0")"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache -cp 'lib/*' io.lightllm.cli.Main)
nvidia-smi -L
export NCCL_NVLS_ENABLE=0
for tp in 1 2; do
  dev=cuda:0; [[ $tp == 2 ]] && dev=cuda:0,cuda:1
  "${J[@]}" generate --model shared/models/stories260K --prompt "Once upon a time" --max-new-tokens 40 --temperature 0 --device $dev --tp $tp --json 2>/dev/null | tail -1
done
for tp in 1 2; do
  dev=cuda:0; [[ $tp == 2 ]] && dev=cuda:0,cuda:1
  for b in 1 64; do
    timeout 150 "${J[@]}" bench static --model llama-8b --load-format dummy --device $dev --tp $tp --batch-size $b --input-len 128 --output-len 16 --kv-dtype f16 --json 2>&1 | tail -1
  done
done
