#!/usr/bin/env bash
# The CPU comparison with Jlama (issue "decode at the memory roofline"): the same Hugging Face files,
# batch 1 (and the engine at batch 8), alternating runs, medians of $RUNS. Jlama is fetched by bench/jlama/pom.xml
# into $LIB (Maven Central); the product does not depend on it.
#   bench/jlama/compare.sh [CHECKPOINT_DIR]   (default /tmp/llama1b-32k: a Llama-3.2-1B shape with the llama2 vocabulary)
#   RUNS=3 CASES="engine 1 int4;jlama q4 1" bench/jlama/compare.sh DIR   (a subset of the cases)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
ckpt=${1:-/tmp/llama1b-32k}
LIB=${LIB:-/tmp/jlama-lib}
RUNS=${RUNS:-3}
TOKENS=${TOKENS:-64}
shared=$(cd "$root/../shared" && pwd)
java=${JAVA_HOME:+$JAVA_HOME/bin/}java

if [[ ! -f $ckpt/model.safetensors ]]; then
  "$root/scripts/lightllm" bench checkpoint --model "$root/bench/configs/llama-1b-32k.json" --out "$ckpt" --tokenizer "$shared/tokenizers/llama2"
fi
if [[ ! -f $LIB/jlama-core-0.8.4.jar ]]; then
  (cd "$here" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$LIB")
fi

engine() { # batch, quant
  "$root/scripts/lightllm" bench static --model "$ckpt" --batch-size "$1" --input-len 16 --output-len "$TOKENS" --quant "$2" --json 2>/dev/null \
    | grep '^{' | sed 's/.*"decode_tokens_per_s":\([0-9.]*\).*/\1/'
}
jlama() { # weights, streams
  (cd "$here" && "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$LIB/*" JlamaBench.java "$ckpt" "$1" "$TOKENS" "$2" 2>/dev/null) \
    | grep '^{' | sed 's/.*"decode_tokens_per_s":\([0-9.]*\).*/\1/'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

declare -A got
# Jlama with 8 concurrent generate() calls on one model stalled (no progress, no CPU) in every try: not measured
cases=("engine 1 none" "jlama bf16 1" "engine 1 int8" "engine 1 int4" "jlama q4 1" "engine 8 none")
# CASES="engine 1 int4;jlama q4 1" runs a subset (';' between cases)
if [[ -n ${CASES:-} ]]; then IFS=';' read -r -a cases <<< "$CASES"; fi
echo "$(date -u '+%F %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), checkpoint $ckpt"
for run in $(seq "$RUNS"); do
  for c in "${cases[@]}"; do
    set -- $c
    v=$("$@")
    got[$c]="${got[$c]:-} $v"
    echo "run $run: $c -> $v tok/s (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
echo "| run | decode tok/s (median of $RUNS) | runs |"
echo "| --- | ---: | --- |"
for c in "${cases[@]}"; do
  echo "| $c | $(echo "${got[$c]}" | median) |${got[$c]} |"
done
