#!/usr/bin/env bash
# session 12, call g: 8B int8 batch 1 (prefill of 128 tokens) with QuantTensorGemm up to 128 rows
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
for q in int8 int4; do
"${J[@]}" -Dlightllm.tuning.cuda.matmul.quant_mma_max_m=128 -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
  --batch-size 1 --input-len 128 --output-len 16 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' | sed "s/^{/{\"quant\":\"$q\",\"quant_mma_max_m\":128,/" | tee -a "$OUT/quant.log"
done
