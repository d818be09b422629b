#!/usr/bin/env bash
# Fills .gpu/ for a run on the lent GPU machine (no JDK, no network there; 64 MiB travel at most, counted with the
# tracked tree): ../shared/device/pack.sh's jlink'd JDK and jars, trimmed of what no GPU run uses, plus
#   tests   the test jars and classes, the JUnit console, shared/fixtures/tiny (and stories260K if it fits)
#   serve   the llama2 tokenizer and stories260K (serving and checkpoint stages)
# and bench/EncoderOverlap compiled (the packed JDK has no compiler). Build first: ./mvnw -q -B package -DskipTests.
# On the GPU machine: . .gpu/boot.sh && bash scripts/gpu-check.sh STAGES   (see docs/cuda.md)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/pack-gpu.sh tests|serve}
../shared/device/pack.sh ../shared/peers/peer_limit.py >/dev/null
rm -f .gpu/lib/pdfbox*.jar .gpu/lib/fontbox*.jar .gpu/lib/VectorGraphics2D*.jar .gpu/lib/graphics2d*.jar .gpu/lib/animated-gif*.jar \
  .gpu/lib/langchain4j*.jar
rm -rf .gpu/shared .gpu/models-tests .gpu/engine-tests .gpu/server-tests .gpu/kernels-tests.jar .gpu/junit-console.jar
mkdir -p .gpu/shared/fixtures .gpu/shared/models .gpu/shared/tokenizers .gpu/bench
if [[ $mode == tests ]]; then
  cp ~/.m2/repository/org/junit/platform/junit-platform-console-standalone/1.14.1/junit-platform-console-standalone-1.14.1.jar .gpu/junit-console.jar
  cp tornado-kernels/target/tornado-kernels-0.1.0-SNAPSHOT-tests.jar .gpu/kernels-tests.jar
  cp -r models/target/test-classes .gpu/models-tests && rm -rf .gpu/models-tests/fixtures
  cp -r engine/target/test-classes .gpu/engine-tests
  cp -r server/target/test-classes .gpu/server-tests
  cp -r ../shared/fixtures/tiny .gpu/shared/fixtures/
  [[ ${WITH_STORIES:-0} == 1 ]] && cp -r ../shared/models/stories260K .gpu/shared/models/
else
  cp -r ../shared/tokenizers/llama2 .gpu/shared/tokenizers/
  cp -r ../shared/models/stories260K .gpu/shared/models/
fi
javac -nowarn -cp "server/target/lightllm-server.jar:server/target/lib/*" -d .gpu/bench bench/vision/EncoderOverlap.java
gpu=$(du -sk .gpu | cut -f1); tree=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
echo "pack: .gpu $((gpu / 1024)) MiB + tracked tree $((tree / 1024)) MiB (limit 64 MiB)"
