#!/usr/bin/env bash
# session 12, call d: QuantTensorGemm with vector reductions for split k and the zeroing inside the permute launch:
# tests on cuda:0, decode matmuls at the 8B matrices (m = 16, 64) with k split to 264, 396 and 528 groups, 8B static decode
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
for g in 264 396 528; do
  "${J[@]}" -Dlightllm.tuning.cuda.matmul.tc_groups=$g -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
    --only gemv --batches 16,64 --seconds 0.2 2>&1 | grep -E "^\|" | grep -v "x128256x\|x32000x" | sed "s/^/groups=$g /" | tee -a "$out/qgemm.log" | grep -v bf16
  date +%T
done
"${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
  --batch-size 16,64 --input-len 128 --output-len 32 --kv-dtype f16 --json 2>&1 | grep '^{' | sed 's/^{/{"quant":"none",/' | tee -a "$out/quant.log"
for q in int8 int4; do
  "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
    --batch-size 16,64 --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
    | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/quant.log"
  date +%T
done
