#!/usr/bin/env bash
# session 13, call c: programmatic dependent launch with the GEMVs' weights prefetched into the L2 before they wait
# (launch_dependents first in every kernel): correctness with it on, then 8B bf16 / int8 / int4 decode without and with it
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
"${J[@]}" -Dlightllm.tuning.cuda.launch.pdl=1 -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
  -Dlightllm.vendor.gemm=false -Dlightllm.tuning.cuda.matmul.tensor_cores=0 \
  -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
  --select-class io.lightllm.models.llama.LlamaGoldenTest --select-class io.lightllm.kernels.AttentionTest \
  --select-class io.lightllm.kernels.MatmulTest --select-class io.lightllm.kernels.QuantMatmulTest \
  --select-class io.lightllm.tornado.compiler.WarpOperationsTest --details=tree --disable-banner > "$out/pdl-tests.log" 2>&1
grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/pdl-tests.log" | head -20; date +%T
for q in none int8 int4; do
  for pdl in 0 1; do
    b=1,64; [ $q != none ] && b=1
    "${J[@]}" -Dlightllm.tuning.cuda.launch.pdl=$pdl -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy \
      --device cuda:0 --batch-size $b --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
      | sed "s/^{/{\"pdl\":$pdl,\"quant\":\"$q\",/" | tee -a "$out/pdl.log"
    date +%T
  done
done
