#!/usr/bin/env bash
# session 12, call c: decode matmuls at the 8B matrices (m = 2, 16, 64) through QuantTensorGemm with k split to
# 264 (default), 132 and 528 groups; then where an int8 batch-64 step goes (graph-less profile)
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
for g in 264 132 528; do
  "${J[@]}" -Dlightllm.tuning.cuda.matmul.tc_groups=$g -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
    --only gemv --batches 2,16,64 --seconds 0.2 2>&1 | grep -E "^\|" | grep -v "x128256x\|x32000x" | sed "s/^/groups=$g /" | tee -a "$out/qgemm.log"
  date +%T
done
"${J[@]}" -Dlightllm.graphs=false -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
  --batch-size 64 --input-len 128 --output-len 16 --kv-dtype f16 --quant int8 --profile 2>&1 | tail -30 | tee "$out/profile-int8-b64.log"
date +%T
