#!/usr/bin/env bash
# Fills .gpu/ for a run on the lent GPU machine (no JDK, no network there; 64 MiB travel at most, counted with the
# tracked tree): ../shared/device/pack.sh's jlink'd JDK and jars, trimmed of what no GPU run uses, plus everything
# every stage of scripts/gpu-check.sh reads, so one pack serves all of a session's calls (no re-packing while the
# machine waits): the test jars and classes, the JUnit console, shared/fixtures/tiny, shared/models/stories260K
# (Hugging Face and GGUF), the llama2 tokenizer, and bench/EncoderOverlap compiled (the packed JDK has no compiler).
# Build first: ./mvnw -q -B package -DskipTests. AB_OLD (below) adds old builds' jars for A/B stages.
# On the GPU machine: . .gpu/boot.sh && bash scripts/gpu-check.sh STAGES   (see docs/cuda.md)
set -euo pipefail
cd "$(dirname "$0")/.."
# a clean .gpu/ (the jlink'd JDK is kept: pack.sh builds it once)
[[ -d .gpu ]] && find .gpu -mindepth 1 -maxdepth 1 ! -name jdk.txz -exec rm -rf {} +
../shared/device/pack.sh ../shared/peers/peer_limit.py >/dev/null
rm -f .gpu/lib/pdfbox*.jar .gpu/lib/fontbox*.jar .gpu/lib/VectorGraphics2D*.jar .gpu/lib/graphics2d*.jar .gpu/lib/animated-gif*.jar \
  .gpu/lib/langchain4j*.jar
# JNA's natives for other platforms (1.8 MiB) and DJL's model-zoo listings in the tokenizer jar: no run reads them
for j in .gpu/lib/jna-*.jar; do
  unzip -Z1 "$j" | grep -E '^com/sun/jna/[^/]+/(lib)?jnidispatch' | grep -v '/linux-x86-64/' | xargs -r zip -q -d "$j" >/dev/null
done
for j in .gpu/lib/tokenizers-*.jar; do zip -q -d "$j" 'nlp/*' >/dev/null 2>&1 || true; done
# the jars travel as one xz archive of uncompressed copies (13 MiB instead of 29 deflated); boot.sh unpacks it
tmp=$(mktemp -d)
for j in .gpu/lib/*.jar; do
  mkdir "$tmp/x" && (cd "$tmp/x" && unzip -q "$OLDPWD/$j" && zip -q -0 -r -X "$tmp/$(basename "$j")" .) && rm -rf "$tmp/x"
done
tar cf - -C "$tmp" --exclude x . | xz -6 -T2 > .gpu/lib.txz
rm -rf "$tmp" .gpu/lib
cat >> .gpu/boot.sh <<'BOOT'
# the jars come as lib.txz (scripts/pack-gpu.sh): unpack them into lib/ beside it
gpu_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -f $gpu_dir/lib.txz && ! -d $gpu_dir/lib ]]; then mkdir -p "$gpu_dir/lib" && xz -dc "$gpu_dir/lib.txz" | tar xf - -C "$gpu_dir/lib"; fi
BOOT
mkdir -p .gpu/shared/fixtures .gpu/shared/models .gpu/shared/tokenizers .gpu/bench
cp ~/.m2/repository/org/junit/platform/junit-platform-console-standalone/1.14.1/junit-platform-console-standalone-1.14.1.jar .gpu/junit-console.jar
cp tornado-kernels/target/tornado-kernels-0.1.0-SNAPSHOT-tests.jar .gpu/kernels-tests.jar
cp -r models/target/test-classes .gpu/models-tests && rm -rf .gpu/models-tests/fixtures
cp -r engine/target/test-classes .gpu/engine-tests
cp -r server/target/test-classes .gpu/server-tests
cp -r ../shared/fixtures/tiny .gpu/shared/fixtures/
cp -r ../shared/models/stories260K .gpu/shared/models/
cp -r ../shared/tokenizers/llama2 .gpu/shared/tokenizers/
javac -nowarn -cp "server/target/lightllm-server.jar:server/target/lib/*" -d .gpu/bench bench/vision/EncoderOverlap.java
# AB_OLD="REV:MODULE:FOLDER ...": MODULE's jar as built at REV (in a git worktree) into .gpu/FOLDER/, for the stages of
# gpu-check.sh that compare a change with the build before it (abjar and split take old/, tablelen sized-old/)
for spec in ${AB_OLD:-}; do
  IFS=: read -r rev module folder <<< "$spec"
  wt=$(mktemp -d)/wt
  git worktree add -q --detach "$wt" "$rev"
  (cd "$wt" && ./mvnw -o -q -B package -DskipTests -pl "$module" -am)
  mkdir -p ".gpu/$folder" && cp "$wt/$module/target/$module-0.1.0-SNAPSHOT.jar" ".gpu/$folder/"
  git worktree remove --force "$wt"
  echo "pack: $module at $rev in .gpu/$folder/"
done
gpu=$(find .gpu -type f -print0 | xargs -0 stat -c %s | awk '{s += $1} END {print int(s / 1048576)}')
tree=$(git ls-files -z | xargs -0 stat -c %s | awk '{s += $1} END {print int(s / 1048576)}')
echo "pack: .gpu $gpu MiB + tracked tree $tree MiB (limit 64 MiB)"
