#!/usr/bin/env bash
# session 13, call e: references, then programmatic dependent launch (next kernel launched before the wait) without and
# with it, 8B bf16 and int8 decode at batch 1 (the L2 prefetch reverted)
cd "$(dirname "$0")"
export LD_PRELOAD="$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")/lib/libjsig.so"
J=(java --enable-native-access=ALL-UNNAMED --add-modules=jdk.incubator.vector -Dlightllm.cache.dir=/tmp/lightllm-cache)
out=$OUT
nvidia-smi -L; date +%T
python3 peer_limit.py "$out/peer-limit.json" 2>&1 | grep -E "copy_TBps|bs1_roofline|matmul_only_bs1_tok"
for q in none int8; do for pdl in 0 1; do
  "${J[@]}" -Dlightllm.tuning.cuda.launch.pdl=$pdl -cp 'lib/*' io.lightllm.cli.Main bench static --model llama-8b --load-format dummy \
    --device cuda:0 --batch-size 1 --input-len 128 --output-len 32 --kv-dtype f16 --quant $q --json 2>&1 | grep '^{' \
    | sed "s/^{/{\"pdl\":$pdl,\"quant\":\"$q\",/" | tee -a "$out/pdl.log"
done; done; date +%T
