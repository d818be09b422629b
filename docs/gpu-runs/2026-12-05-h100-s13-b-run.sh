#!/usr/bin/env bash
# session 13, call b: batch-1 decode matmuls at the 8B matrices (Java GEMV; cuBLAS with vendor_min_m=1); decode attention
# at batch 1 and 16 over 1k and 4k contexts with split lengths 16..256 and decode_units 1024..8192
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
for v in 2 1; do
  "${J[@]}" -Dlightllm.tuning.cuda.matmul.vendor_min_m=$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
    --only gemv --batches 1 --seconds 0.2 2>&1 | grep -E "^\| decode matmul bf16" | sed "s/^/vendor_min_m=$v /" | tee -a "$out/gemv.log"
done; date +%T
for cfg in split_len=16 split_len=32 split_len=64 split_len=128 split_len=256 decode_units=1024 decode_units=4096 decode_units=8192; do
  "${J[@]}" -Dlightllm.tuning.cuda.attention.$cfg -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
    --only attention --batches 1,16,64 --contexts 1024,4096 --prefill 0 --seconds 0.2 2>&1 | grep -E "^\| decode" | grep -v f8 | sed "s/^/$cfg /" \
    | tee -a "$out/attn.log"
done
date +%T
