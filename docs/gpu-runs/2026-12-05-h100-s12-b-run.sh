#!/usr/bin/env bash
# session 12, call b: the tensor-core GEMM that dequantises int8/int4 in registers (QuantTensorGemm) on cuda:0, then
# 8B static decode at batch 16 and 64: bf16, int8 and int4 through the dequantise-then-cuBLAS path and through the new kernel
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
"${J[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
  -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher execute \
  --select-class io.lightllm.kernels.QuantTensorGemmTest --select-class io.lightllm.tornado.compiler.WarpOperationsTest \
  --details=tree --disable-banner > "$out/qtg-tests.log" 2>&1
grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/qtg-tests.log" | head -20; date +%T
"${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
  --batch-size 16,64 --input-len 128 --output-len 32 --kv-dtype f16 --json 2>&1 | grep '^{' | sed 's/^{/{"quant":"none",/' | tee -a "$out/quant.log"
for q in int8 int4; do
  for cfg in "-Dlightllm.tuning.cuda.matmul.quant_mma_max_m=0" "-Dlightllm.tuning.cuda.matmul.quant_mma_max_m=64 -Dlightllm.tuning.cuda.matmul.gemv_max_m=8"; do
    "${J[@]}" $cfg -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
      --batch-size 16,64 --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
      | sed "s/^{/{\"quant\":\"$q\",\"cfg\":\"${cfg//-Dlightllm.tuning.cuda.matmul./}\",/" | tee -a "$out/quant.log"
    date +%T
  done
done
