#!/usr/bin/env bash
# session 13, call d: the GEMVs' L2 prefetch capped per weight row (LJ_PREFETCH_LIMIT bytes: 0 = none), without and with
# programmatic dependent launch, 8B bf16 / int4 / int8 decode at batch 1
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
run() { # quant pdl limit batches
  "${J[@]}" -Dlightllm.tuning.cuda.launch.pdl=$2 -Dlightllm.cuda.nvrtc.options=-DLJ_PREFETCH_LIMIT=$3 -cp 'lib/*' io.lightllm.cli.Main bench static \
    --model llama-8b --load-format dummy --device cuda:0 --batch-size $4 --input-len 128 --output-len 32 --kv-dtype f16 --quant $1 --json 2>&1 \
    | grep '^{' | sed "s/^{/{\"pdl\":$2,\"limit\":$3,\"quant\":\"$1\",/" | tee -a "$out/prefetch.log"
}
run none 0 0 1; run none 1 0 1; run none 0 2048 1; run none 1 2048 1; run none 1 512 1; run none 1 8192 1; date +%T
run int4 0 0 1; run int4 1 0 1; run int4 1 2048 1; date +%T
run int8 0 0 1; run int8 1 0 1; run int8 1 2048 1; date +%T
