#!/usr/bin/env bash
# Tensor parallelism on two GPUs (nvidia-h100-x2), see docs/tensor-parallel.md. Runs from the packed .gpu/ folder
# (as scripts/gpu-check.sh, with kernels-tests.jar, models-tests/ and junit-console.jar) and writes logs to $OUT.
# Stages: tests (NCCL and tp 2 vs tp 1 on the fixtures) | nccl (all-reduce latency, NcclBench) | static (8B-shaped decode at tp 1 and 2) | eager (tp 2 without
# CUDA graphs) | serve (--tp 2 answers).
set -uo pipefail
cd "$(dirname "$0")/../.gpu" 2>/dev/null || cd "$(dirname "$0")"
out=${OUT:-$PWD/gpu-out}; mkdir -p "$out"
# NVLink multicast stays off (the product sets it too, before NCCL starts)
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
# NCCL is not part of the CUDA toolkit: PyTorch's wheel brings one
nccl=$(python3 -c 'import nvidia.nccl, glob, os; print(sorted(glob.glob(os.path.join(list(nvidia.nccl.__path__)[0], "lib", "libnccl.so*")))[0])' 2>/dev/null \
  || find / -xdev -name 'libnccl.so.2*' 2>/dev/null | head -1)
echo "libnccl: ${nccl:-not found}"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache -Dlightllm.nccl.library="$nccl")
stages=${*:-tests nccl static serve}
nvidia-smi -L; nvidia-smi topo -m 2>/dev/null | head -4
for s in $stages; do
  case $s in
    tests)
      NCCL_DEBUG=INFO timeout 200 "${J[@]}" -Dlightllm.shared.dir="$PWD/shared" -Dlightllm.vendor.gemm=false \
        -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
        --select-class io.lightllm.tornado.cuda.NcclGpuTest --select-class io.lightllm.models.llama.TensorParallelGpuTest \
        --details=tree --disable-banner > "$out/tp-tests.log" 2>&1
      grep -E "NCCL INFO (NCCL version|Channel 00.*via|comm .* rank)|✔|✘|tests (successful|failed|aborted)|Exception" "$out/tp-tests.log" | head -40 ;;
    nccl)
      # all-reduce latency and bus bandwidth as the ranks run it (eager and recorded in a graph)
      timeout 200 "${J[@]}" -cp 'lib/*' io.lightllm.tornado.cuda.NcclBench 2>&1 | grep -vE '^WARNING' | tee "$out/nccl-bench.log" ;;
    static)
      for tp in 1 2; do
        dev=cuda:0; [[ $tp == 2 ]] && dev=cuda:0,cuda:1
        timeout 240 "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device $dev --tp $tp \
          --batch-size 1,64,256 --input-len 128 --output-len 16 --kv-dtype f16 --json 2>&1 | grep -E '^\{|tensor parallelism|Exception|rror' | tee -a "$out/tp-static.log"
      done ;;
    eager)
      # tp 2 with every decode step launched kernel by kernel (no CUDA graphs): what recording the NCCL calls saves
      timeout 200 "${J[@]}" -Dlightllm.graphs=false -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy \
        --device cuda:0,cuda:1 --tp 2 --batch-size 1,64 --input-len 128 --output-len 16 --kv-dtype f16 --json 2>&1 \
        | grep -E '^\{|Exception|rror' | tee -a "$out/tp-static-eager.log" ;;
    serve)
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main serve --model shared/models/stories260K --device cuda:0,cuda:1 --tp 2 --port 18080 \
        --max-total-token-num 8192 > "$out/tp-serve.log" 2>&1 &
      server=$!
      for i in $(seq 1 90); do sleep 1; curl -sf localhost:18080/health >/dev/null && break; done
      curl -s localhost:18080/v1/completions -H 'Content-Type: application/json' \
        -d '{"model":"stories260K","prompt":"Once upon a time","max_tokens":24,"temperature":0,"n":2}' | tee "$out/tp-serve-answer.json"; echo
      kill $server; wait $server 2>/dev/null; grep -E "tensor parallelism|serving" "$out/tp-serve.log" ;;
  esac
done
