#!/usr/bin/env bash
# The CUDA checks and benchmarks, as run on the H100/H200 (see docs/cuda.md). Runs from the packed
# .gpu/ folder (scripts/pack-gpu.sh: the JDK, the jars, the fixtures, the test jars and the JUnit console),
# writes logs to $OUT (or ./gpu-out). Stages: peers | prefilltests | selftest | tests | tensorcores | warpgroup | quanttests | int4grid | int4mma | warps4 | abjar | gemvreduce | codesweep | prefillorder | wholewarps | kvslots | bench | static | gemv | gatedq | launches | attn | prefill-warps | fold | pending | sampled | quant | kv | targets | pdl | q8 | ncu | ncudecode | ncugemv | prefillprof | quantprof | staged | split | tablelen | staging | warmup | b1prof | argmax | folded | decodetargets | decodeprof | gemm | moe | moeprof | vision | overlap | soak | serve |
# checkpoint | serve8b | prefix | prefix-invariant | chunked (default: selftest tests bench static serve). checkpoint writes the 8B-shaped
# Hugging Face checkpoint that serve8b, prefix, chunked and soak serve ($CKPT, default /tmp/llama8b-32k).
set -uo pipefail
cd "$(dirname "$0")/../.gpu" 2>/dev/null || cd .gpu
out=${OUT:-$PWD/gpu-out}; mkdir -p "$out"
# the JDK's signal chaining (NVRTC embeds LLVM; io.lightllm.tornado.runtime.JvmSignalHandlers explains)
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
# test runs through the JUnit console print nothing until they end: one that hangs would take the whole call with it (session 22
# lost ~560 s of device time so); cut off after TEST_TIMEOUT seconds (exit 124, its log has what finished)
TJ=(timeout "${TEST_TIMEOUT:-540}" "${J[@]}")
# prefill attention (issue 12) at 4 and 8 warps a work-group (attention.prefill_warps; 8 from 512 new tokens on): the wide
# groups share each K/V tile among 128 rows, half the L2 traffic a flop. Run peers in the same call for SDPA.
prefill_warps() {
  for v in prefill_warps=4 prefill_warps=8; do
    "${J[@]}" -Dlightllm.tuning.cuda.attention.$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 \
      --graphs --only attention --batches 1 --contexts 1024 --prefill 512,4096 --seconds 0.2 2>&1 | grep -E "^\|" | grep -i prefill \
      | sed "s/^/$v /" | tee -a "$1"
  done
}
# the class path of a build for abjar and gemvreduce: "new" is this one; another name puts the jars in that folder of .gpu/
# first (old/: the build before a change, copied there by hand)
build_cp() { if [ "$1" = new ]; then echo 'lib/*'; else echo "$1/*:lib/*"; fi; }
# Nsight Compute of one launch (the sixth) of the kernels matching regex $2 as `bench kernels --device cuda:0` runs them
# with the arguments after it: the full report in $out/ncu-$1.txt and its summary here; fails where ncu read no counters
# (gVisor machines do not give them). ncu_sass: the same launch's SASS lines with their stall samples, $out/ncu-$1-sass.csv,
# where ncu_report read counters for $1.
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
ncu_report() {
  local tag=$1 kernel=$2; shift 2
  timeout 150 "$NCU" --clock-control none --target-processes all -k "regex:$kernel" --launch-skip 5 --launch-count 1 \
    --set full --import-source no --page details --print-details all \
    "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --seconds 0.05 "$@" > "$out/ncu-$tag.txt" 2>&1
  if ! grep -q "Duration" "$out/ncu-$tag.txt"; then
    echo "ncu read no counters here (gVisor machines do not give them):"; grep -iE "error|==ERR|==WARNING" "$out/ncu-$tag.txt" | head -5
    return 1
  fi
  echo "== $tag"; grep -E "^  [A-Za-z_]+.*\(|Duration|DRAM Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Warp Cycles Per Issued|Issue Slots Busy|Executed Ipc A|Stall (Long|Short|Wait|Barrier|MIO|Math|Not Sel|LG)|Grid Size|Block Size|Waves Per SM|L2 Hit|Mem Busy|Max Bandwidth|Bank" \
    "$out/ncu-$tag.txt" | awk '!seen[$0]++' | head -40
}
ncu_sass() {
  local tag=$1 kernel=$2; shift 2
  grep -q "Duration" "$out/ncu-$tag.txt" 2>/dev/null || return 0
  timeout 150 "$NCU" --clock-control none --target-processes all -k "regex:$kernel" --launch-skip 5 --launch-count 1 \
    --section SourceCounters --section WarpStateStats --page source --print-source sass --csv \
    "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --seconds 0.05 "$@" > "$out/ncu-$tag-sass.csv" 2>&1
}
stages=${*:-selftest tests bench static serve}
for s in $stages; do
  case $s in
    peers)
      # the references every GPU figure is reported against, measured in the same call (docs/benchmarks.md):
      # copy bandwidth, the batch-1 roofline and the cuBLAS matmul-only ceiling; PyTorch's flash attention
      python3 peer_limit.py "$out/peer-limit.json" 2>&1 | tail -3
      python3 ../bench/peers/sdpa_attention.py 2>&1 | tail -1 | tee "$out/peer-sdpa.json"
      python3 ../bench/peers/sdpa_decode.py 2>&1 | tail -1 | tee "$out/peer-decode.json" ;;
    selftest)
      nvidia-smi -L
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main devices 2>&1 | tee "$out/devices.log"
      "${J[@]}" -cp 'lib/*' io.lightllm.tornado.cuda.CudaSelfTest 2>&1 | tee "$out/selftest.log" ;;
    tests)
      # every kernel test and the model golden test, with cuda:0 as the accelerator beside the JVM;
      # the portable matmul (not cuBLAS nor the tensor-core kernels, dense or experts, which round activations to bf16) for the fp32 golden comparison
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -Dlightllm.vendor.gemm=false \
        -Dlightllm.tuning.cuda.matmul.tensor_cores=0 -Dlightllm.tuning.cuda.moe.tensor_cores=0 \
        -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests:engine-tests" org.junit.platform.console.ConsoleLauncher execute \
        --select-package io.lightllm.kernels --select-package io.lightllm.models.llama \
        --select-package io.lightllm.models.decoder --select-package io.lightllm.models.gguf --select-package io.lightllm.models.vision \
        --select-class io.lightllm.tornado.compiler.SubGroupReduceTest --select-class io.lightllm.engine.DeviceLogprobsKernelTest \
        --select-class io.lightllm.tornado.compiler.Fp8E4m3Test \
        --select-class io.lightllm.tornado.cuda.CudaBackendTest --select-class io.lightllm.tornado.cuda.CudaGpuTest \
        --details=tree --disable-banner > "$out/tests.log" 2>&1
      # the log is written first and read afterwards: a pipe that closes early must not cut the test run short
      grep -E "✘|tests (successful|failed|aborted)|MethodSource|Exception" "$out/tests.log" | head -80 ;;
    tensorcores)
      # the tensor-core kernels and the kernel-language features under them (warp barriers, constants bound at the ref),
      # cuda:0 against the JVM; TC_BENCH=0 skips the kernels' timings after the tests; TC_CLASSES: other test classes (short names)
      sel=(); for c in ${TC_CLASSES:-tornado.compiler.WarpOperationsTest kernels.AttentionTest tornado.compiler.ConstantArgumentsTest \
          kernels.VisionTest kernels.MoeTest kernels.MatmulTest kernels.QuantMatmulTest kernels.BatchInvarianceTest kernels.DequantizedGemmTest \
          kernels.QuantTensorGemmTest kernels.Int4TensorGemvTest kernels.Int8TensorGemvTest}; do sel+=(--select-class "io.lightllm.$c"); done
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher execute "${sel[@]}" \
        --details=tree --disable-banner > "$out/tensorcore-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/tensorcore-tests.log" | head -40
      [ "${TC_BENCH:-1}" = 1 ] && "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only matmul,attention --batches 1,16,64,256 \
        --contexts 1024,4096,8192 --square 4096 --prefill 512,1024,4096 2>&1 | tee "$out/tensorcore-kernels.log" | grep -E "^\|" ;;
    warpgroup)
      # Hopper's warpgroup MMA (docs/kernels.md): its tests on cuda:0, the GEMM and prefill attention against cuBLAS's and
      # the same kernels' mma.sync forms
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher execute \
        --select-method io.lightllm.tornado.compiler.WarpOperationsTest#warpgroupMmaMultipliesSwizzledTiles \
        --select-method io.lightllm.tornado.compiler.WarpOperationsTest#warpgroupMmaTakesAnNMajorF16B \
        --select-method io.lightllm.kernels.MatmulTest#warpgroupMmaGemmMatchesTheProductOfBf16Operands \
        --select-method io.lightllm.kernels.AttentionTest#warpgroupPrefillMatchesNaiveAttention \
        --details=tree --disable-banner > "$out/warpgroup-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/warpgroup-tests.log" | head -20
      for v in 0 1; do
        "${J[@]}" -Dlightllm.tuning.cuda.attention.prefill_warpgroup=$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
          --only matmul,attention --batches 1 --contexts 1024 --square 4096 --prefill 512,1024,4096 2>&1 \
          | grep -E "^\| (matmul bf16\*bf16|prefill)" | sed "s/^/prefill_warpgroup=$v /" | tee -a "$out/warpgroup-kernels.log"
      done ;;
    quanttests)
      # the matmul kernels over bf16, int8 and packed weights and the dequantising GEMM, cuda:0 against the JVM
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher execute \
        --select-class io.lightllm.kernels.MatmulTest --select-class io.lightllm.kernels.QuantMatmulTest \
        --select-class io.lightllm.kernels.DequantizedGemmTest --select-class io.lightllm.kernels.QuantTensorGemmTest \
        --select-class io.lightllm.kernels.Int4TensorGemvTest --select-class io.lightllm.kernels.Int8TensorGemvTest \
        --details=tree --disable-banner > "$out/quant-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/quant-tests.log" | head -40 ;;
    bench)
      "${J[@]}" -cp 'lib/*' io.lightllm.tornado.cuda.CudaBench 2>&1 | tee "$out/cudabench.log"
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --tokens 64 --batches 1,16,64 \
        --contexts 1024,4096,8192 --square 4096 --prefill 4096 2>&1 | tee "$out/kernels.log" ;;
    serve)
      # the serving stack on the GPU: stories260K on cuda:0, a request-rate sweep
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main serve --model shared/models/stories260K --device cuda:0 --port 18080 \
        --max-total-token-num 65536 > "$out/serve.log" 2>&1 &
      server=$!
      for i in $(seq 1 120); do sleep 1; curl -sf localhost:18080/health >/dev/null && break; done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench serve --url http://127.0.0.1:18080 --endpoint openai --num-prompts 200 \
        --sweep 10,50,200,inf --input-len 64 --output-len 64 --seed 0 --out "$out/serving.json" \
        --plot "$out/serving-stories260K-h100.png" 2>&1 | tee "$out/serving.log" | grep -vE "^WARN"
      kill $server; wait $server 2>/dev/null ;;
    checkpoint)
      # random bf16 weights of Llama-3-8B's shape with the llama2 tokenizer (14.4 GB), written by the engine itself
      [ -f "${CKPT:=/tmp/llama8b-32k}/model.safetensors" ] || "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench checkpoint \
        --model ../bench/configs/llama-8b-32k.json --out "$CKPT" --tokenizer shared/tokenizers/llama2 2>&1 | tail -1 ;;
    serve8b)
      # issue 12's serving target: the 8B-shaped checkpoint ($CKPT), 400 requests of 512 in / 128 out at once,
      # then 100 of 2,048 in / 128 out (with chunks of \$CHUNK tokens, default off; more serve flags in \$SERVE_FLAGS)
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main serve --model "${CKPT:=/tmp/llama8b-32k}" --device cuda:0 --port 18083 \
        --chunked-prefill-size ${CHUNK:-0} ${SERVE_FLAGS:-} > "$out/serve8b.log" 2>&1 &
      server=$!
      for i in $(seq 1 600); do sleep 1; curl -sf localhost:18083/health >/dev/null && break; done
      for shape in 400:512 100:2048; do
        # a warm-up of as many requests first (other prompts): the batch sizes the run meets are then recorded already
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench serve --url http://127.0.0.1:18083 --endpoint openai --num-prompts ${shape%%:*} \
          --warmup ${shape%%:*} --request-rate inf --input-len ${shape##*:} --output-len 128 --seed 0 --out "$out/serve8b-${shape##*:}.json" 2>&1 \
          | tee "$out/serve8b-${shape##*:}.log" | grep -iE "itl|tpot|ttft|throughput|completed|failed|inference thread"
      done
      curl -s localhost:18083/token_load; echo
      kill $server; wait $server 2>/dev/null ;;
    chunked)
      # chunked prefill's target (issue 15): 64 short streams (128 in / 256 out) measured while 4,096-token prompts
      # arrive beside them; their p99 inter-token latency against the median, with chunks of 512 and without
      for chunk in 0 512; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main serve --model "${CKPT:=/tmp/llama8b-32k}" --device cuda:0 --port 18082 \
          --chunked-prefill-size $chunk > "$out/serve-chunked-$chunk.log" 2>&1 &
        server=$!
        for i in $(seq 1 600); do sleep 1; curl -sf localhost:18082/health >/dev/null && break; done
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench serve --url http://127.0.0.1:18082 --num-prompts 24 --request-rate 1 \
          --input-len 4096 --output-len 16 --seed 1 > "$out/chunked-$chunk-long.log" 2>&1 &
        long=$!
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench serve --url http://127.0.0.1:18082 --num-prompts 64 --max-concurrency 64 \
          --input-len 128 --output-len 256 --seed 0 --out "$out/chunked-$chunk.json" 2>&1 | tee "$out/chunked-$chunk.log" | grep -iE "itl|tpot|ttft|throughput"
        wait $long; grep -iE "ttft|throughput" "$out/chunked-$chunk-long.log"
        kill $server; wait $server 2>/dev/null
      done ;;
    prefix|prefix-invariant)
      # the prefix cache's target (issue 15): the 8B-shaped checkpoint of the checkpoint stage ($CKPT),
      # 2,000-token shared system prompts and 100-token questions, median TTFT with the cache and without;
      # prefix-invariant: the same with --batch-invariant, where the outputs must not differ at all
      inv=$([ $s = prefix-invariant ] && echo --batch-invariant); tag=$([ $s = prefix-invariant ] && echo prefix-inv || echo prefix)
      for mode in cache nocache; do
        flag=$([ $mode = nocache ] && echo --disable-prefix-cache)
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main serve --model "${CKPT:=/tmp/llama8b-32k}" --device cuda:0 --port 18081 \
          $flag $inv > "$out/serve-$tag-$mode.log" 2>&1 &
        server=$!
        for i in $(seq 1 600); do sleep 1; curl -sf localhost:18081/health >/dev/null && break; done
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench serve --url http://127.0.0.1:18081 --num-prompts ${PREFIX_PROMPTS:-200} --request-rate 8 \
          --dataset shared-prefix --prefix-len 2000 --num-prefixes 4 --input-len 100 --output-len 64 --seed 0 \
          --out "$out/$tag-$mode.json" 2>&1 | tee "$out/$tag-$mode.log" | grep -vE "^WARN"
        kill $server; wait $server 2>/dev/null
      done
      # the target asks for the same output tokens with and without the cache
      python3 ../bench/serve/same_outputs.py "$out/$tag-cache.json" "$out/$tag-nocache.json" | tee "$out/$tag-same.log" | head -5 ;;
    static)
      for b in 1 64 256; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size $b --input-len 128 --output-len 32 --kv-dtype f16 --json 2>&1 | tail -1 | tee -a "$out/static.log"
      done ;;
    gemv)
      # batch-1 decode (issue 14): the matmuls at the 8B matrices (bf16 through cuBLAS, vendor_min_m=1, and through the
      # Java GEMV, the default, also with four rows a team; int8; int4), then bf16 batch 1 end to end those ways, int8 and
      # int4, and where a bf16 step goes
      for v in vendor_min_m=1 vendor_min_m=2 gemv_rows_per_team=4; do
        "${J[@]}" -Dlightllm.tuning.cuda.matmul.$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
          --only gemv --batches 1 2>&1 | grep -E "^\|" | sed "s/^/$v /" | tee -a "$out/gemv.log"
      done
      for cfg in matmul.vendor_min_m=1 matmul.vendor_min_m=2 matmul.gemv_rows_per_team=4 matmul.gemv_gated=1 attention.split_len=16; do
        "${J[@]}" -Dlightllm.tuning.cuda.$cfg -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b \
          --load-format dummy --device cuda:0 --batch-size 1 --input-len 128 --output-len 64 --kv-dtype f16 --json 2>&1 | grep '^{' \
          | sed "s/^{/{\"tuning\":\"$cfg\",/" | tee -a "$out/gemv-static.log"
      done
      for q in int8 int4; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size 1 --input-len 128 --output-len 64 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' | sed "s/^{/{\"quant\":\"$q\",/" \
          | tee -a "$out/gemv-static.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
        --input-len 128 --output-len 16 --kv-dtype f16 --profile 2>&1 | tail -25 | tee "$out/gemv-profile.log" ;;
    attn)
      # decode attention (issue 12): batch 1 at splits of 64 (the default), 32 and 16 tokens, then every batch and an int8 pool
      for sl in 64 32 16; do
        "${J[@]}" -Dlightllm.tuning.cuda.attention.split_len=$sl -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
          --only attention --batches 1 --contexts 160,1024,4096,8192 --prefill 0 2>&1 | grep -E "^\|" | grep -v f8 | sed "s/^/split_len=$sl /" \
          | tee -a "$out/attn.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only attention --batches 16,64,256 \
        --contexts 1024,4096 --prefill 512,4096 2>&1 | grep -E "^\|" | tee -a "$out/attn.log" ;;
    warps4)
      # decode attention with four warps a work-group (attention.decode_warps=4: a split's steps shared by the group's
      # warps, merged in local memory; a short context needs no merge kernel): its tests and the cluster barrier's on
      # cuda:0, the kernels with 1 and 4 warps (4 also with 64-token warp turns), then 8B bf16 and int8 decode at
      # batch 1, 16 and 64 with and without on one load each (bench static --variants)
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher execute \
        --select-method io.lightllm.tornado.compiler.WarpOperationsTest#clusterBarrierShowsEachGroupTheOthersWrites \
        --select-method io.lightllm.kernels.AttentionTest#tensorCoreDecodeWithFourWarpsAGroupMatchesNaiveAttention \
        --select-method io.lightllm.kernels.AttentionTest#tensorCoreDecodeMatchesNaiveAttention \
        --details=tree --disable-banner > "$out/warps4-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/warps4-tests.log" | head -20
      for v in decode_warps=1 decode_warps=4 decode_warps=4,cuda.attention.split_len=64; do
        "${J[@]}" $(echo "-Dlightllm.tuning.cuda.attention.$v" | sed 's/,cuda\./ -Dlightllm.tuning.cuda./g') -cp 'lib/*' io.lightllm.cli.Main \
          bench kernels --device cuda:0 --graphs --only attention --batches 1,16,64,256 --contexts 160,1024,4096 --prefill 0 --seconds 0.2 \
          2>&1 | grep -E "^\| decode" | sed "s/^/$v /" | tee -a "$out/warps4-kernels.log"
      done
      for q in bf16 int8; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1,16,64 \
          --input-len 128 --output-len 32 --kv-dtype f16 $([ $q = bf16 ] || echo --quant $q) --json \
          --variants ";cuda.attention.decode_warps=4;;cuda.attention.decode_warps=4" 2>&1 | grep '^{' | sed "s/^{/{\"quant\":\"$q\",/" \
          | tee -a "$out/warps4-static.log"
      done ;;
    abjar)
      # a change against the build before it, in separate processes on one machine: old/ holds that build's jars (put there
      # by hand: cp the old tornado-kernels jar into .gpu/old/), ahead of lib/ on the class path; AB_ARGS is the Main command
      # (default: decode attention over f16, int8 and fp8 pools at batch 1-256, 1k and 4k), run old, new, old, new (AB_BUILDS:
      # other folders of .gpu/ too, in the order given; AB_FLAGS: java options of every run, such as tuning properties)
      AB=${AB_ARGS:-bench kernels --device cuda:0 --graphs --only attention --batches 1,16,64,256 --contexts 1024,4096 --prefill 0 --seconds 0.2}
      for build in ${AB_BUILDS:-old new old new}; do
        "${J[@]}" ${AB_FLAGS:-} -cp "$(build_cp $build)" io.lightllm.cli.Main $AB 2>&1 | grep -E '^\| |^\{' | sed "s/^/$build /" | tee -a "$out/abjar.log"
      done ;;
    gemvreduce)
      # session 25: the int8 GEMVs on int8 activations with wider teams (matmul.int8_q8_items_per_unit=768) reduced by
      # Matmul.gemvReduceByWarps, and CUDA's warp sums unrolled (a team's rows' shuffles interleave), against the build
      # before both in old/ (as abjar): the GEMV and sub-group tests on cuda:0, every batch-1 GEMV in each build, then 8B
      # batch 1 decode alternating builds (GR_STATIC: build:quant pairs; GR_TESTS=0 skips the tests)
      if [ "${GR_TESTS:-1}" = 1 ]; then
        "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -cp "lib/*:junit-console.jar:kernels-tests.jar" \
          org.junit.platform.console.ConsoleLauncher execute --select-class io.lightllm.kernels.MatmulTest \
          --select-class io.lightllm.kernels.QuantMatmulTest --select-class io.lightllm.kernels.FoldedGemvTest \
          --select-class io.lightllm.tornado.compiler.SubGroupReduceTest --details=tree --disable-banner > "$out/gemvreduce-tests.log" 2>&1
        grep -E "✘|tests (successful|failed|aborted)|expected" "$out/gemvreduce-tests.log" | head -10
      fi
      for b in old new; do
        "${J[@]}" -cp "$(build_cp $b)" io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only gemv --batches 1 --seconds 0.2 2>&1 \
          | grep -E "^\| decode (matmul|gated)" | sed "s/^/$b /" | tee -a "$out/gemvreduce-gemv.log"
      done
      S=(bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 --input-len 128 --output-len 32 --kv-dtype f16 --json)
      for v in ${GR_STATIC:-old:none new:none old:int8 new:int8 old:int4 new:int4 new:none old:none new:int8 old:int8}; do
        "${J[@]}" -cp "$(build_cp ${v%%:*})" io.lightllm.cli.Main "${S[@]}" --quant ${v#*:} 2>&1 | grep '^{' | sed "s/^/$v /" \
          | tee -a "$out/gemvreduce-static.log"
      done ;;
    prefilltests)
      # the warpgroup prefill's tests on cuda:0 (a change to its copies or order of steps; run before its timings)
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
        --select-method io.lightllm.kernels.AttentionTest#warpgroupPrefillMatchesNaiveAttention \
        --select-method io.lightllm.kernels.AttentionTest#warpgroupPrefillTakesHalfOperands \
        --select-method 'io.lightllm.models.llama.LlamaGoldenTest#halfPrefillOperandsGiveTheSameModel(java.nio.file.Path)' \
        --details=tree --disable-banner > "$out/prefill-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/prefill-tests.log" | head -20 ;;
    prefillorder)
      # session 27: the warpgroup prefill's unit order and operands, variants of attention.prefill_* keys (comma lists),
      # alternating in separate processes: f32 queries and rows or the f16 query operand and bf16 rows (half_operands), request-major
      # (tile_major_passes=0) or tile-major order (run peers in the same call for SDPA); PO_PREFILL the cases (RxT: R prompts of T
      # tokens in one launch, FlashAttention's benchmark shape at 32x512)
      for v in ${PO_VARIANTS:-half_operands=0 half_operands=1 half_operands=0 half_operands=1}; do
        flags=(); IFS=, read -ra kv <<< "$v"; for x in "${kv[@]}"; do flags+=("-Dlightllm.tuning.cuda.attention.prefill_$x"); done
        "${J[@]}" "${flags[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
          --only attention --batches 1 --contexts 1024 --prefill ${PO_PREFILL:-512,1024,2048,4096,32x512,16x1024} --seconds 0.2 2>&1 \
          | grep -E "^\| prefill" | sed "s/^/$v /" | tee -a "$out/prefillorder.log"
      done ;;
    int4mma)
      # session 28: int4 weights at batch 1-8 on tensor cores (Int4TensorGemv, matmul.int4_mma_gemv_max_m; 0, the default, keeps the
      # int8-activation GEMV at batch 1 and QuantTensorGemm from 2): its tests on cuda:0; the decode matmuls at the 8B matrices
      # under I4_VARIANTS (comma lists of matmul.* keys; the int8 rows' lines too, for Int8TensorGemv's int8_mma_gemv_* keys),
      # alternating (at batches I4_KBATCHES, default 1,8); 8B decode (I4_QUANT, default int4) at I4_BATCHES under I4_STATIC (bench static --variants) on one load
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -cp "lib/*:junit-console.jar:kernels-tests.jar" \
        org.junit.platform.console.ConsoleLauncher execute --select-class io.lightllm.kernels.Int4TensorGemvTest \
        --select-class io.lightllm.kernels.Int8TensorGemvTest --select-class io.lightllm.kernels.QuantMatmulTest --details=tree --disable-banner > "$out/int4mma-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/int4mma-tests.log" | head -20
      for v in ${I4_VARIANTS:-int4_mma_gemv_max_m=0 int4_mma_gemv_max_m=8 int4_mma_gemv_max_m=0 int4_mma_gemv_max_m=8}; do
        flags=(); IFS=, read -ra kv <<< "$v"; for x in "${kv[@]}"; do flags+=("-Dlightllm.tuning.cuda.matmul.$x"); done
        "${J[@]}" "${flags[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only gemv --batches ${I4_KBATCHES:-1,8} \
          --seconds 0.1 2>&1 | grep -E "^\| decode (matmul|gated) int[48]" | sed "s/^/$v /" | tee -a "$out/int4mma.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size ${I4_BATCHES:-1,8} \
        --input-len 128 --output-len 32 --kv-dtype f16 --quant ${I4_QUANT:-int4} --json \
        --variants "${I4_STATIC:-;cuda.matmul.int4_mma_gemv_max_m=8;;cuda.matmul.int4_mma_gemv_max_m=8}" 2>&1 | grep '^{' | tee -a "$out/int4mma-static.log" ;;
    wholewarps)
      # session 27: eight-warp decode groups where they take a request whole (attention.decode_warps_whole=8, the default) against
      # four warps and a merge (0), alternating, at the batches around the rule's bound; then 8B bf16 decode over 1k prompts, both on one load
      for v in 0 8 0 8; do
        "${J[@]}" -Dlightllm.tuning.cuda.attention.decode_warps_whole=$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
          --only attention --batches 8,16,32 --contexts 1024,2048 --prefill 0 --seconds 0.2 2>&1 | grep -E "^\| decode" | sed "s/^/whole=$v /" | tee -a "$out/wholewarps.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 16 \
        --input-len 1024 --output-len 64 --kv-dtype f16 --variants ';cuda.attention.decode_warps_whole=0;;cuda.attention.decode_warps_whole=0' --json 2>&1 \
        | grep '^{' | tee -a "$out/wholewarps-static.log" ;;
    codesweep)
      # session 26: decode attention (batch 1-256) over int8 and fp8 pools under other launch shapes than the tuned ones (issue 12: int8
      # pools at 52-56 % of copy at batch 16 and 64), one process a variant: the tuning settings of each (a comma list of
      # attention.* keys; codes_groups_per_unit=12 compiles the one-warp kernel over codes under launch bounds for 12 warps an SM),
      # "ordered" the default shapes over a request's slots side by side (bench kernels --kv-slots ordered)
      for v in ${CS_VARIANTS:-default decode_units_codes=2048 decode_units_codes=8192 decode_warps=8 codes_groups_per_unit=12 ordered}; do
        flags=(); slots=shuffled
        case $v in default) ;; ordered) slots=ordered ;; *) IFS=, read -ra kv <<< "$v"; for x in "${kv[@]}"; do flags+=("-Dlightllm.tuning.cuda.attention.$x"); done ;; esac
        "${J[@]}" "${flags[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only attention --batches 1,16,64,256 \
          --contexts 1024,4096 --prefill 0 --seconds 0.2 --kv-slots $slots 2>&1 | grep -E "^\| decode" | sed "s/^/$v /" | tee -a "$out/codesweep.log"
      done ;;
    kvslots)
      # decode attention over shuffled pool slots (bench kernels' default: every key row a random read, 128 bytes a head
      # for int8 at head dimension 128) and over ordered ones (a request's tokens side by side, as a fresh server
      # allocates them): how much of the int8 pools' shortfall (issue 12) is the bench's layout
      for layout in shuffled ordered; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only attention --batches 1,16,64,256 \
          --contexts 1024,4096 --prefill 0 --seconds 0.2 --kv-slots $layout 2>&1 | grep -E "^\| decode" | tee -a "$out/kvslots.log"
      done ;;
    pending)
      # session 34: sampled decoding's kernels at 1 and 64 rows of 128k, builds before this one (old/, and others in
      # PENDING_BUILDS: folders of .gpu/ with their Sampling, Softmax and GroupReduce classes, copied by hand) against it,
      # in PENDING_BUILDS's order (default old new old new); then SamplingTest on cuda:0
      for build in ${PENDING_BUILDS:-old new old new}; do
        for t in 1 64; do
          "${J[@]}" -cp "$(build_cp $build)" io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only elementwise --tokens $t \
            --seconds 0.2 2>&1 | grep -E "^\|" | grep -E "softmax|argmax|threshold" | sed "s/^/$build /" | tee -a "$out/pending.log"
        done
      done
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher \
        execute --select-class io.lightllm.kernels.SamplingTest 2>&1 | grep -E "tests (successful|failed|aborted)|✘" | tee -a "$out/pending.log" ;;
    sampled)
      # session 34: sampled decoding end to end, 8B bf16 at batch 1 and 64, temperature 1, top-k 50, top-p 0.9 (bench static
      # --temperature): the build before the threshold's 16-way search (old/: its Sampling, Softmax and GroupReduce classes) and this one
      for build in old new; do
        "${J[@]}" -cp "$(build_cp $build)" io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size 1,64 --input-len 128 --output-len 32 --kv-dtype f16 --temperature 1 --top-k 50 --top-p 0.9 --json 2>&1 | grep '^{' \
          | sed "s/^{/{\"build\":\"$build\",/" | tee -a "$out/sampled.log"
      done ;;
    argmax)
      # session 33: the greedy argmax's work-group (sampling.argmax_local, 1024 on CUDA; 256 before) at ARGMAX_ROWS (default 1)
      # rows of 128k logits, alternating twice, then 8B at batch 1 (ARGMAX_QUANT, default int8) on one load each (new to warm
      # up, then old new old new), and its test on cuda:0
      for v in 256 1024 256 1024; do
        for t in ${ARGMAX_ROWS:-1}; do
          "${J[@]}" -Dlightllm.tuning.cuda.sampling.argmax_local=$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
            --only elementwise --tokens $t --seconds 0.2 2>&1 | grep -E "^\|" | grep -i argmax | sed "s/^/argmax_local=$v /" | tee -a "$out/argmax.log"
        done
      done
      for q in ${ARGMAX_QUANT:-int8}; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
          --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json \
          --variants ";cuda.sampling.argmax_local=256;;cuda.sampling.argmax_local=256" 2>&1 | grep '^{' | sed "s/^{/{\"quant\":\"$q\",/" \
          | tee -a "$out/argmax.log"
      done
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -cp "lib/*:junit-console.jar:kernels-tests.jar" org.junit.platform.console.ConsoleLauncher \
        execute --select-class io.lightllm.kernels.SamplingTest 2>&1 | grep -E "tests (successful|failed|aborted)|✘" | tee -a "$out/argmax.log" ;;
    fold)
      # batch-1 decode with the residual norms and adds folded into the GEMVs (tuning matmul.gemv_fold, off until this stage
      # has measured it; FoldedGemv): the kernel and model tests on cuda:0 with it on (the golden tests: greedy tokens against
      # transformers), then 8B bf16, int8 and int4 decode at batch 1 without and with it
      FOLD=(-Dlightllm.tuning.cuda.matmul.gemv_fold=1)
      "${TJ[@]}" "${FOLD[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -Dlightllm.vendor.gemm=false \
        -Dlightllm.tuning.cuda.matmul.tensor_cores=0 -Dlightllm.tuning.cuda.moe.tensor_cores=0 \
        -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
        --select-class io.lightllm.kernels.FoldedGemvTest --select-class io.lightllm.models.decoder.FoldedDecodeTest \
        --select-class io.lightllm.models.decoder.ArchitectureGoldenTest --select-class io.lightllm.models.llama.LlamaGoldenTest \
        --select-class io.lightllm.models.llama.LlamaInt8Test --details=tree --disable-banner > "$out/fold-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/fold-tests.log" | head -20
      for q in none int8 int4; do # one load each, the variants on it (bench static --variants)
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
          --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json --variants ';cuda.matmul.gemv_fold=1' 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/fold.log"
      done ;;
    prefill-warps)
      prefill_warps "$out/prefill-warps.log" ;;
    gatedq)
      # the int8 and int4 gated GEMVs (gate, up and the activation in one batch-1 launch, session 18): their kernel tests
      # and the quantised model test on cuda:0, then 8B int8 and int4 decode at batch 1 with them, without them
      # (matmul.gemv_gated=0, which also turns bf16's off) and with them again, one load each
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
        --select-class io.lightllm.kernels.MatmulTest --select-class io.lightllm.kernels.QuantMatmulTest \
        --select-class io.lightllm.models.llama.LlamaInt8Test --details=tree --disable-banner > "$out/gatedq-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/gatedq-tests.log" | head -20
      for q in int8 int4; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
          --input-len 128 --output-len 64 --kv-dtype f16 --quant $q --json --variants ';cuda.matmul.gemv_gated=0;' 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/gatedq.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only gemv --batches 1 --seconds 0.2 2>&1 \
        | grep -E "^\| decode matmul" | tee -a "$out/gatedq-gemv.log" ;;
    launches)
      # the batch-1 step's fixed cost: the 8B step's launches over weights that fit the L2 (bench/configs/llama-8b-launches.json),
      # bf16, int8 and int4 (one load each), beside the 8B step of the same weights in the same call
      for q in none int8 int4; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model ../bench/configs/llama-8b-launches.json --load-format dummy \
          --device cuda:0 --batch-size 1 --input-len 128 --output-len 64 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/launches.log"
      done ;;
    int4grid)
      # the batch-1 int4 GEMVs' grid: matmul.int4_q8_items_per_unit (the plain int8-activation GEMV, 768 since session 22;
      # 3,072 before, as matmul.gemv_items_per_unit, set for the float path: a 4096 x 4096 team made two trips of loads)
      # and matmul.gemv_items_per_unit (what the gated one follows), each on the GEMVs alone, then 8B int4 decode at
      # batch 1 on one load with each (bench static --variants)
      for v in int4_q8_items_per_unit=3072 int4_q8_items_per_unit=1536 int4_q8_items_per_unit=768 int4_q8_items_per_unit=384 \
          gemv_items_per_unit=1536 gemv_items_per_unit=768; do
        "${J[@]}" -Dlightllm.tuning.cuda.matmul.$v -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs \
          --only gemv --batches 1 --seconds 0.2 2>&1 | grep -E "^\| decode (matmul|gated) int4" | sed "s/^/$v /" | tee -a "$out/int4grid-gemv.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
        --input-len 128 --output-len 32 --kv-dtype f16 --quant int4 --json \
        --variants "${INT4GRID_VARIANTS:-;cuda.matmul.int4_q8_items_per_unit=3072;cuda.matmul.int4_q8_items_per_unit=1536;cuda.matmul.int4_q8_items_per_unit=384;}" 2>&1 \
        | grep '^{' | tee -a "$out/int4grid-static.log" ;;
    q8)
      # the batch-1 int8 and int4 GEMVs on int8 activations (tunings matmul.int8_q8 / matmul.int4_q8, off until this
      # stage has measured them): their kernel tests and the quantised model test on cuda:0 with them on, then 8B int8
      # and int4 decode at batch 1 without and with them, and the GEMVs alone
      Q8=(-Dlightllm.tuning.cuda.matmul.int8_q8=1 -Dlightllm.tuning.cuda.matmul.int4_q8=1)
      "${TJ[@]}" "${Q8[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" \
        -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" org.junit.platform.console.ConsoleLauncher execute \
        --select-class io.lightllm.kernels.MatmulTest --select-class io.lightllm.kernels.QuantMatmulTest \
        --select-class io.lightllm.models.llama.LlamaInt8Test --details=tree --disable-banner > "$out/q8-tests.log" 2>&1
      grep -E "✘|tests (successful|failed|aborted)|Exception|expected" "$out/q8-tests.log" | head -20
      for q in int8 int4; do # one load each: the defaults, then the q8 GEMV
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
          --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json --variants ";cuda.matmul.${q}_q8=1" 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/q8.log"
      done
      for on in 0 1; do
        "${J[@]}" -Dlightllm.tuning.cuda.matmul.int8_q8=$on -Dlightllm.tuning.cuda.matmul.int4_q8=$on -cp 'lib/*' io.lightllm.cli.Main \
          bench kernels --device cuda:0 --graphs --only gemv --batches 1 --seconds 0.2 2>&1 | grep -E "^\| decode matmul (int8|int4)" \
          | sed "s/^/q8=$on /" | tee -a "$out/q8-gemv.log"
      done ;;
    targets)
      # the open issues' kernel and static targets in one call (about 5 minutes; run peers in the same call for the
      # references): 8B bf16 decode at batch 1, 64, 256; int8 and int4 at 1, 16, 64 (issue 14); decode attention over
      # f16 and int8 pools and prefill attention, one prompt and 32 x 512 (issue 12); int8 and int4 also at batch 8; the Java tensor-core GEMM against cuBLAS at 4096^3
      # (issue 12); Mixtral-8x7B at batch 64 where the GPU holds its 93 GB (issue 13; TARGETS_MOE=0 skips it). The bf16 and
      # quantised lines share one log (a call returns at most 8 files: with peers this stage writes 4 or 5)
      # (TARGETS_STATIC=0 runs the kernels alone: a short call)
      [ "${TARGETS_STATIC:-1}" = 1 ] && "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
        --batch-size 1,64,256 --input-len 128 --output-len 32 --kv-dtype f16 --json 2>&1 | grep '^{' | tee -a "$out/targets-static.log"
      for q in $([ "${TARGETS_STATIC:-1}" = 1 ] && echo int8 int4); do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size 1,8,16,64 --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/targets-static.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only attention,matmul --batches 1,16,64,256 \
        --contexts 1024,4096 --square 4096 --prefill 512,4096,32x512 --seconds 0.2 2>&1 | grep -E "^\|" | tee "$out/targets-kernels.log"
      if [ "${TARGETS_MOE:-1}" = 1 ] && [ "$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)" -gt 120000 ]; then
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model mixtral-8x7b --load-format dummy --device cuda:0 \
          --batch-size 1,64 --input-len 128 --output-len 32 --kv-dtype f16 --json 2>&1 | grep '^{' | tee -a "$out/targets-moe.log"
      fi ;;
    ncu)
      # where the tensor-core kernels' time goes (Nsight Compute reads the counters on Firecracker machines, not on gVisor):
      # prefill attention at 4,096 causal tokens and the Java GEMM at 4096^3;
      # the full section set of one launch each, and the SASS lines' stall samples of the prefill kernel
      ncu_report prefill TensorCoreAttention_prefill --only attention --batches 1 --contexts 1024 --prefill 4096 \
        && ncu_report gemm TensorCoreMatmul_matmulHalves --only matmul --square 4096
      ncu_sass prefill TensorCoreAttention_prefill --only attention --batches 1 --contexts 1024 --prefill 4096
      ls -la "$out"/ncu-* ;;
    ncudecode|ncugemv)
      # where decode attention's time goes over f16 and int8 pools (ncudecode; issue 12: the int8 kernel reads half the bytes
      # in about f16's time), or the batch-1 GEMVs' over bf16, int8 and int4 weights (ncugemv; issue 14: int8 and int4 stream
      # the layers' matrices at 60-75 % of copy where bf16 reaches 97 %): one launch each, the summary here and the whole
      # report in $out, then the first case's SASS lines with their stall samples
      if [ $s = ncudecode ]; then
        A="--only attention --contexts 1024 --prefill 0"
        cases="b16-int8:decodeCodes__i8:16 b16-f16:decodeF16__f16:16 b256-int8:decodeCodes__i8:256 b256-f16:decodeF16__f16:256"
      else
        A="--only gemv"
        cases="int8:Matmul_matmulInt8GemvQ8:1 int4:QuantMatmul_matmulInt4GemvQ8:1 bf16:Matmul_matmulGemv__:1 int8gated:Matmul_matmulInt8GemvGatedQ8:1"
      fi
      for case in $cases; do
        IFS=: read -r name kernel batch <<< "$case"
        ncu_report $s-$name $kernel $A --batches $batch || break
      done
      IFS=: read -r name kernel batch <<< "${cases%% *}"
      ncu_sass $s-$name $kernel $A --batches $batch
      ls -la "$out"/ncu-* ;;
    decodeprof)
      # where a serving-sized decode step goes (400 x 512/128 runs ~256-400 streams of ~600 tokens): each kernel's
      # device time, the step launched kernel by kernel (-Dlightllm.graphs=false) so the profile can name them;
      # batch 256 with 512-token prompts, then the same step recorded for its wall time
      "${J[@]}" -Dlightllm.graphs=false -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
        --batch-size 256 --input-len 512 --output-len 8 --kv-dtype f16 --profile 2>&1 | tee "$out/decodeprof.log" \
        | grep -E "^(kernels|prefill|decode)|^\| [A-Za-z]" | sed -n '/decode steps/,$p' | head -30
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
        --batch-size 256 --input-len 512 --output-len 32 --kv-dtype f16 2>&1 | grep -E "^decode" | tee -a "$out/decodeprof.log" ;;
    moeprof)
      # where a Mixtral step goes, kernel by kernel (-Dlightllm.graphs=false): 8 of Mixtral-8x7B's 32 layers (24 GB, fits an
      # H100), batch 1 (the warp kernels: 2 experts) and 64 (the dense experts)
      "${J[@]}" -Dlightllm.graphs=false -cp 'lib/*' io.lightllm.cli.Main bench static --model ../bench/configs/mixtral-8x7b-8layers.json \
        --load-format dummy --device cuda:0 --batch-size 1,64 --input-len 128 --output-len 8 --kv-dtype f16 --profile 2>&1 \
        | tee "$out/moeprof.log" | grep -E "^(kernels|decode)|^\| [A-Za-z]" | sed -n '/decode steps/,/^decode/p' | head -40 ;;
    folded)
      # the batch-1 GEMVs of a decode step with its norms and residual adds folded in (bench kernels --only folded: q/k/v,
      # o, [gate; up], down and the head over int8 rows and int4 blocks, graph replays), under each of FOLDED_VARIANTS
      # (matmul.* tunings of cuda; none: the defaults), then Nsight Compute of each int4 product (FOLDED_NCU: which; empty
      # skips), and the SASS lines' stall samples of the first of them; first FoldedGemvTest on cuda:0 (FOLDED_TESTS=0 skips)
      if [ "${FOLDED_TESTS:-1}" = 1 ]; then
        "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -cp "lib/*:junit-console.jar:kernels-tests.jar" \
          org.junit.platform.console.ConsoleLauncher execute --select-class io.lightllm.kernels.FoldedGemvTest --details=tree --disable-banner \
          > "$out/folded-tests.log" 2>&1
        grep -E "✘|tests (successful|failed)" "$out/folded-tests.log" | head -20
      fi
      for v in ${FOLDED_VARIANTS:-none q8_staged_groups_per_unit=1 q8_staged_groups_per_unit=2 q8_staged_long_items_per_unit=128 q8_staged_long_items_per_unit=512 q8_staged_int4=0}; do
        flag=(); [ "$v" != none ] && flag=(-Dlightllm.tuning.cuda.matmul.$v)
        "${J[@]}" ${flag[@]+"${flag[@]}"} -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only folded --seconds 0.2 2>&1 \
          | grep -E "^\| decode folded" | sed "s/^/$v /" | tee -a "$out/folded.log"
      done
      first=
      for p in ${FOLDED_NCU-down gateup o head}; do
        first=${first:-$p}
        ncu_report folded-$p StagedQ8Gemv_int4 --only folded --products $p || break
      done
      [ -n "$first" ] && ncu_sass folded-$first StagedQ8Gemv_int4 --only folded --products $first ;;
    decodetargets)
      # issue 14's decode targets alone (a short call, e.g. on an H200 when one is lent): the copy rate and cuBLAS
      # matmul-only references, 8B bf16 at batch 1 and 64, int8 and int4 at batch 1; three runs on each load (--variants of
      # the defaults), since about one batch-1 run in ten lands some 12 % low (sessions 33 and 35): report the median;
      # DT_INT4_VARIANTS / DT_INT8_VARIANTS: int4's / int8's --variants instead (e.g. the defaults alternating with a tuning
      # under test)
      python3 peer_limit.py "$out/peer-limit.json" 2>&1 | tail -3
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
        --batch-size 1,64 --input-len 128 --output-len 32 --kv-dtype f16 --variants ';;' --json 2>&1 | grep '^{' | tee -a "$out/decodetargets.log"
      for q in int8 int4; do
        v="${DT_INT8_VARIANTS:-;;}"; [ $q = int4 ] && v="${DT_INT4_VARIANTS:-;;}"
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size 1 --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --variants "$v" --json 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/decodetargets.log"
      done ;;
    staged)
      # the batch-1 int8-activation GEMVs with their activations staged in local memory once a work-group (StagedQ8Gemv;
      # int4 on by default since session 35): FoldedGemvTest and FoldedDecodeTest on cuda:0, then 8B decode at batch 1 on one
      # load a format (STAGED_QUANT), the defaults alternating twice with STAGED_INT4 / STAGED_INT8 (bench static --variants),
      # then where an int4 step goes with staging and without (STAGED_PROF: 1 0; 1:128 stages at 128 items a compute unit)
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" \
        org.junit.platform.console.ConsoleLauncher execute --select-class io.lightllm.kernels.FoldedGemvTest \
        --select-class io.lightllm.models.decoder.FoldedDecodeTest --details=tree --disable-banner > "$out/staged-tests.log" 2>&1
      grep -E "✘|tests (successful|failed)" "$out/staged-tests.log" | head -20
      for q in ${STAGED_QUANT:-int4 int8}; do
        if [ $q = int4 ]; then v="${STAGED_INT4:-;cuda.matmul.q8_staged_int4=0;cuda.matmul.q8_staged_long_items_per_unit=128}"
        else v="${STAGED_INT8:-;cuda.matmul.q8_staged_int8=1;cuda.matmul.q8_staged_int8=1,cuda.matmul.q8_staged_items_per_unit=128}"; fi
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
          --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --variants "$v;$v" --json 2>&1 | grep '^{' \
          | sed "s/^{/{\"quant\":\"$q\",/" | tee -a "$out/staged-static.log"
      done
      for p in ${STAGED_PROF:-1 0}; do
        [ "$p" = none ] && continue
        # an entry: 1 or 0 (staged or not), or 1:N (staged at N items a compute unit, q8_staged_items_per_unit)
        staged=${p%%:*}; units=(); [ "$p" != "$staged" ] && units=(-Dlightllm.tuning.cuda.matmul.q8_staged_items_per_unit=${p#*:})
        "${J[@]}" -Dlightllm.graphs=false -Dlightllm.tuning.cuda.matmul.q8_staged_int4=$staged ${units[@]+"${units[@]}"} -cp 'lib/*' io.lightllm.cli.Main \
          bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 --input-len 128 --output-len 16 --kv-dtype f16 \
          --quant int4 --profile 2>&1 | tee "$out/staged-prof-int4-${p/:/-}.log" | grep -E "^(kernels|prefill|decode)|^\| [A-Za-z]" \
          | sed -n '/decode steps/,$p' | head -14
      done ;;
    split)
      # session 39: the staged int4 q/k/v projection that does the split's work in its epilogue (matmul.q8_staged_split, off
      # until measured): FoldedGemvTest and FoldedDecodeTest on cuda:0 (it against the projection and splitQkv after it), the
      # 8B q/k/v projection timed with the split kernel after it and with the split in its epilogue, the folded GEMVs of this build against the one in old/ (the int4 tile loop was factored out for it: put f86e03d's
      # tornado-kernels jar there), 8B int4 decode at
      # batch 1 with it off and on alternating on one load, then an int4 step kernel by kernel with it on
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -cp "lib/*:junit-console.jar:kernels-tests.jar:models-tests" \
        org.junit.platform.console.ConsoleLauncher execute --select-class io.lightllm.kernels.FoldedGemvTest \
        --select-class io.lightllm.models.decoder.FoldedDecodeTest --details=tree --disable-banner > "$out/split-tests.log" 2>&1
      grep -E "✘|tests (successful|failed)" "$out/split-tests.log" | head -20
      if [ -d old ]; then
        for build in old new; do
          "${J[@]}" -cp "$(build_cp $build)" io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only folded --seconds 0.2 2>&1 \
            | grep -E "^\| decode folded" | sed "s/^/$build /" | tee -a "$out/split-folded.log"
        done
      fi
      v="cuda.matmul.q8_staged_split=1"
      # the 8B q/k/v projection and the split as two launches, and as the one that splits its own output
      "${J[@]}" -D"lightllm.tuning.$v" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only folded --products qkv \
        --seconds 0.3 2>&1 | grep -E "^\| decode folded int4" | tee -a "$out/split-folded.log"
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
        --input-len 128 --output-len 32 --kv-dtype f16 --quant int4 --variants ";$v;;$v;;$v" --json 2>&1 | grep -E '^\{|rror' \
        | tee "$out/split-static.log"
      "${J[@]}" -Dlightllm.graphs=false -D"lightllm.tuning.$v" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy \
        --device cuda:0 --batch-size 1 --input-len 128 --output-len 16 --kv-dtype f16 --quant int4 --profile 2>&1 | tee "$out/split-prof.log" \
        | grep -E "^(kernels|prefill|decode)|^\| [A-Za-z]" | sed -n '/decode steps/,$p' | head -14 ;;
    tablelen)
      # session 40: recorded decode steps sized for the batch's longest context (rounded up to a power of two) where they were
      # sized for the token table's row length, which a server makes the model's context, and batches padded to the recorded
      # sizes (12 runs as 16): 8B int4 decode at batch 1, 12 and 16 in a table of 8,192-token rows, this build against the build
      # before (34ec5f3: AB_OLD="34ec5f3:models:sized-old" bash scripts/pack-gpu.sh puts its models jar in .gpu/sized-old/,
      # ahead of lib/ on the class path), separate processes old new old new; then this build in a table of the run's own
      # length (as bench static ran before: the two should agree)
      for build in sized-old new sized-old new; do
        "${J[@]}" -cp "$(build_cp $build)" io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size 1,12,16 --input-len 128 --output-len 32 --kv-dtype f16 --quant int4 --table-len 8192 --json 2>&1 | grep -E '^\{|rror' \
          | sed "s/^/$build /" | tee -a "$out/tablelen.log"
      done
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1,16 \
        --input-len 128 --output-len 32 --kv-dtype f16 --quant int4 --json 2>&1 | grep -E '^\{|rror' | sed "s/^/own-length /" \
        | tee -a "$out/tablelen.log" ;;
    staging)
      # session 40: where a decode step's host work leaves the GPU idle. A decode step writes its small per-request arrays after
      # the last step's tokens came back; -Dlightllm.cuda.staging_shared=true (off by default) lets them share a pinned chunk
      # instead of each waiting for the one before. Its self-test, then 8B int4 at batch 1 and 16 off / on / off / on (separate
      # processes), then one run profiled with the graphs on: its "cuda-graph" line is the recorded step's GPU time, which
      # against the step's wall time (the run's decode ms per step) gives the host's share of a step
      "${J[@]}" -Dlightllm.cuda.staging_shared=true -cp 'lib/*' io.lightllm.tornado.cuda.CudaSelfTest 2>&1 | tee "$out/staging-selftest.log" | tail -4
      for shared in false true false true; do
        "${J[@]}" -Dlightllm.cuda.staging_shared=$shared -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy \
          --device cuda:0 --batch-size 1,16 --input-len 128 --output-len 32 --kv-dtype f16 --quant int4 --json 2>&1 | grep -E '^\{|rror' \
          | sed "s/^/shared=$shared /" | tee -a "$out/staging.log"
      done
      "${J[@]}" -Dlightllm.cuda.staging_shared=true -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy \
        --device cuda:0 --batch-size 1,1 --input-len 128 --output-len 64 --kv-dtype f16 --quant int4 --profile 2>&1 \
        | grep -E "^(device|decode|kernels over)|cuda-graph|Sampling" | tee -a "$out/staging.log" ;;
    warmup)
      # session 40: whether the host's side of a decode step (uploads, launch checks, driver calls through FFM) is still cold
      # after bench static's warm-up of one run (31 decode steps: interpreted or C1's first tier): 8B int4 and bf16 at batch 1
      # with the default warm-up and with --warmup-steps 3000, separate processes, alternating
      for w in 0 3000 0 3000; do
        for q in int4 none; do
          "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 1 \
            --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --warmup-steps $w --json 2>&1 | grep -E '^\{|rror' \
            | sed "s/^/warmup=$w $q /" | tee -a "$out/warmup.log"
        done
      done ;;
    b1prof)
      # where a batch-1 decode step goes (issue 14's int8 / int4 ratios): each kernel's device time, launched kernel by
      # kernel (-Dlightllm.graphs=false) so the profile can name them, for bf16, int8 and int4 weights
      for q in none int8 int4; do
        "${J[@]}" -Dlightllm.graphs=false -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 \
          --batch-size 1 --input-len 128 --output-len 16 --kv-dtype f16 --quant $q --profile 2>&1 | tee "$out/b1prof-$q.log" \
          | grep -E "^(kernels|prefill|decode)|^\| [A-Za-z]" | sed -n '/decode steps/,$p' | head -30
      done ;;
    quantprof)
      # where int8's prefill (issue 14: within 10 % of bf16's) loses against bf16's: each kernel's device time in one
      # prefill of 64 x 128 tokens (the targets' prefill shape), bf16 then int8 weights (dequantised, then cuBLAS)
      for q in none int8; do
        "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 64,64 \
          --input-len 128 --output-len 4 --kv-dtype f16 --quant $q --profile 2>&1 | tee "$out/quantprof-$q.log" \
          | grep -E "^(kernels|prefill|decode)|^\| [A-Za-z]" | head -40
      done ;;
    prefillprof)
      # where a serving-sized prefill step goes (issue 12's serving target: 400 x 512 prompts, 8,192 tokens a step):
      # each kernel's device time in one prefill of 16 x 512 tokens, and in the decode steps after it
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy --device cuda:0 --batch-size 16,16 \
        --input-len 512 --output-len 4 --kv-dtype f16 --profile 2>&1 | tee "$out/prefillprof.log" | grep -E "^(kernels|prefill|decode)|^\| [A-Za-z]" | head -60 ;;
    gemm)
      # the Java tensor-core GEMM at 4096^3 against cuBLAS in one run: 128 x 128 tiles at k 32 a step (the default), 128 x 256
      # tiles, and k 64 a step (matmul.tc_deep); issue 12's target is half of cuBLAS
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench kernels --device cuda:0 --graphs --only matmul --square 4096 --seconds 0.3 2>&1 \
        | grep -E "^\|.*4096\^3" | tee "$out/gemm.log" ;;
    moe)
      # Mixtral-8x7B shapes (random bf16 weights, 93 GB) beside the dense 8B of the static stage, one load: batches 1 to 256
      # with the defaults (dense experts from 8 tokens, tensor-core experts from 256: the prefills), then with the dense
      # path off (the warp kernels), then with 256 dense; first the kernels' test on cuda:0 (every path against the reference)
      "${TJ[@]}" -Dlightllm.test.devices=cuda:0 -Dlightllm.shared.dir="$PWD/shared" -cp "lib/*:junit-console.jar:kernels-tests.jar" \
        org.junit.platform.console.ConsoleLauncher execute --select-class io.lightllm.kernels.MoeTest --details=tree --disable-banner \
        > "$out/moe-tests.log" 2>&1
      grep -E "✘|tests (successful|failed)|expected" "$out/moe-tests.log" | head -8
      "${J[@]}" -cp 'lib/*' io.lightllm.cli.Main bench static --model ${MOE_MODEL:-mixtral-8x7b} --load-format dummy --device cuda:0 \
        --batch-size 1,2,4,16,64,256 --input-len 128 --output-len 32 --kv-dtype f16 --json \
        --variants ';cuda.moe.dense_min_tokens=1000000;cuda.moe.tc_min_tokens=257' 2>&1 | grep -E '^\{|rror' | tee -a "$out/moe.log" ;;
  esac
done
