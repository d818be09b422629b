#!/usr/bin/env bash
# session 12, call f: prefill-sized m (128, 256) over int8/int4 weights: dequantise + cuBLAS (default) against QuantTensorGemm
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
for mm in 64 256; do
  "${J[@]}" -Dlightllm.tuning.cuda.matmul.quant_mma_max_m=$mm -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
    --only gemv --batches 128,256 --seconds 0.15 2>&1 | grep -E "^\|" | grep -v "x128256x\|x32000x" | sed "s/^/quant_mma_max_m=$mm /" | tee -a "$out/qgemm.log"
  date +%T
done
