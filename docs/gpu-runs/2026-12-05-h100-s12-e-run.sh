#!/usr/bin/env bash
# session 12, call e: int4 dequantised in bf16 arithmetic inside QuantTensorGemm, the gated GEMV on by default:
# tests on cuda:0, decode matmuls at the 8B matrices (m = 16, 64), 8B static decode at batch 1, 16, 64 for bf16, int8, int4
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
"${J[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
  -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher execute \
  --select-class io.lightllm.kernels.QuantTensorGemmTest --select-class io.lightllm.tornado.compiler.WarpOperationsTest \
  --select-class io.lightllm.kernels.QuantMatmulTest --select-class io.lightllm.kernels.MatmulTest \
  --details=tree --disable-banner > "$out/tests.log" 2>&1
grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/tests.log" | head -20; date +%T
"${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
  --only gemv --batches 16,64 --seconds 0.2 2>&1 | grep -E "^\|" | grep -v "x128256x\|x32000x" | tee -a "$out/qgemm.log" | grep -v bf16
date +%T
for q in none int4 int8; do
  "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
    --batch-size 1,16,64 --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
    | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/quant.log"
  date +%T
done
