set -u
cd .gpu
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
# the new paths on cuda:0 as the tests stage runs them (exact f32 matmuls), with the new CUDA defaults (q8 GEMVs, wide prefill rule)
timeout 110 "${J[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -Dlightllm.vendor.gemm=false \
  -Dlightllm.tuning.cuda.matmul.tensor_cores=0 \
  -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
  --select-class io.lightllm.models.decoder.MixedStepTest --select-class io.lightllm.models.decoder.FoldedDecodeTest \
  --select-class io.lightllm.models.decoder.LogitTokensTest --select-class io.lightllm.models.llama.LlamaInt8Test \
  --select-class io.lightllm.models.llama.LlamaTensorCoreAttentionTest \
  --details=tree --disable-banner > "$OUT/tests.log" 2>&1
grep -E "✘|tests (successful|failed|aborted)" "$OUT/tests.log" | head -12
cd ..
mkdir -p $OUT/c0 $OUT/c8192
OUT=$OUT/c0 timeout 290 bash scripts/gpu-check.sh checkpoint serve8b 2>&1 | tail -12
CHUNK=8192 OUT=$OUT/c8192 timeout 180 bash scripts/gpu-check.sh serve8b 2>&1 | tail -12
