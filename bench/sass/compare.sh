#!/usr/bin/env bash
# Two builds' machine code (SASS, sm_90a) for the same kernels, without a GPU: registers, shared memory and spills, where the global loads
# sit, and how many instructions differ (register numbers and addresses aside). Session 25 used it to find which kernels
# a change left bit for bit as measured, and that ptxas had scheduled the bf16 gated GEMV's loads apart.
#   bench/sass/compare.sh A.jar B.jar 'io.lightllm.kernels.Matmul matmulGemvGated 2=BF16' ['CLASS METHOD [ARG=DTYPE..|*=DTYPE]' ...]
#   bench/sass/compare.sh A.jar B.jar --all [DTYPE]   # every KernelRef of B's io.lightllm.kernels, NativeArrays as DTYPE (F16)
# A and B: tornado-kernels jars or class folders. Needs nvcc (/usr/local/cuda-13.0) and cuobjdump, which the CUDA
# toolkit here lacks; triton's wheel carries one: pip download triton --no-deps -d /tmp/triton && unzip -o -q
# /tmp/triton/triton-*.whl 'triton/backends/nvidia/bin/*' -d /tmp/tt  (or set CUOBJDUMP).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
a=$1 b=$2; shift 2
NVCC=${NVCC:-/usr/local/cuda-13.0/bin/nvcc}
CUOBJDUMP=${CUOBJDUMP:-/tmp/tt/triton/backends/nvidia/bin/cuobjdump}
[[ -x $CUOBJDUMP ]] || { echo "no cuobjdump at $CUOBJDUMP (see the comment at the top of $0)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
if [[ ${1:-} == --all ]]; then
  mapfile -t specs < <(java -cp "$b" "$here/KernelCuda.java" --list "$b" | sed "s/\$/ *=${2:-F16}/")
  set -- "${specs[@]}"
fi
sass() { # build, kernel spec, output prefix: prints registers, shared memory and spills, writes the normalised SASS to prefix.s
  local cls=$1 out=$3; set -- $2
  java -cp "$cls" "$here/KernelCuda.java" "$1" "$2" "$out.cu" "${@:3}" > /dev/null 2> "$out.err" || { echo "not compiled: $(grep -m1 Exception "$out.err")"; return 1; }
  local info; info=$("$NVCC" -cubin -arch=sm_90a "$out.cu" -o "$out.cubin" -Xptxas -v 2>&1)
  "$CUOBJDUMP" -sass "$out.cubin" | grep -E '^\s+/\*[0-9a-f]{4}\*/' | sed -E 's#/\*[0-9a-f]{4}\*/##; s#/\*.*##; s/ +/ /g' > "$out.s"
  echo "$(grep -oE 'Used [0-9]+ registers' <<< "$info" | head -1), $(grep -oE '[0-9]+ bytes smem' <<< "$info" | head -1), $(grep -oE '[0-9]+ bytes spill stores' <<< "$info" | head -1)"
}
# register numbers, addresses and reuse flags aside
normalise() { sed -E 's/\bU?R[0-9]+\b/R/g; s/0x[0-9a-f]+/X/g; s/\.reuse//g'; }
# the first loop that loads from global memory: from its first load to the first branch back above it
loop() { awk '/LDG/ && !s {s=NR} s {print} s && /BRA/ && NR > s + 4 {exit}' "$1" | normalise; }
for spec in "$@"; do
  set -- $spec
  if ! ra=$(sass "$a" "$spec" "$work/a") || ! rb=$(sass "$b" "$spec" "$work/b"); then echo "$2: A ${ra:-?}; B ${rb:-?}"; continue; fi
  differ=$(diff <(normalise < "$work/a.s") <(normalise < "$work/b.s") | grep -c '^[<>]' || true)
  echo "$2: A $ra; B $rb; instructions A $(wc -l < "$work/a.s"), B $(wc -l < "$work/b.s"), differing lines $differ"
  echo "  first global loads at instruction A $(grep -n LDG "$work/a.s" | head -6 | cut -d: -f1 | tr '\n' ' ')| B $(grep -n LDG "$work/b.s" | head -6 | cut -d: -f1 | tr '\n' ' ')"
  echo "  its first loop: A $(loop "$work/a.s" | wc -l), B $(loop "$work/b.s" | wc -l) instructions, $(diff <(loop "$work/a.s") <(loop "$work/b.s") | grep -c '^[<>]' || true) lines differing"
done
