#!/usr/bin/env bash
# session 12, call a: references, correctness on cuda:0, then the three off switches and the unmeasured batch-1 changes
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
bash ../scripts/gpu-check.sh peers; date +%T
bash ../scripts/gpu-check.sh tests; date +%T
for cfg in matmul.vendor_min_m=2 matmul.gemv_gated=1 matmul.gemv_rows_per_team=4; do
  "${J[@]}" -Dlightllm.tuning.cuda.$cfg -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b \
    --load-format dummy --device cuda:0 --batch-size 1 --input-len 128 --output-len 64 --kv-dtype f16 --json 2>&1 | grep '^{' \
    | sed "s/^{/{\"tuning\":\"$cfg\",/" | tee -a "$out/gemv-static.log"
  date +%T
done
for q in int8 int4; do
  "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
    --batch-size 1 --input-len 128 --output-len 64 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' | sed "s/^{/{\"quant\":\"$q\",/" \
    | tee -a "$out/gemv-static.log"
  date +%T
done
for cfg in fused_merge=0 fused_merge=1; do
  "${J[@]}" -Dlightllm.tuning.cuda.attention.$cfg -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
    --only attention --batches 1,16 --contexts 1024,4096 --prefill 0 2>&1 | grep -E "^\|" | grep -v f8 | sed "s/^/$cfg /" \
    | tee -a "$out/attn.log"
done
date +%T
