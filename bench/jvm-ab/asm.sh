#!/usr/bin/env bash
# C2's machine code for the JVM kernels' methods while KernelAb runs one build, and the allocations C2 left in each
# (a Vector API loop that allocates is one whose vectors C2 boxed: Int4Gemv.dot4 ran 1.4x faster once its loop-carried
# accumulators stopped being boxed, session 22). Needs gcc and Debian's libhsdis0-fcml (apt install libhsdis0-fcml).
#   bench/jvm-ab/asm.sh JAR 'io.lightllm.kernels.jvm.Int4Gemv::dot4' [KernelAb arguments after the jars...]
# writes the listing to /tmp/kernel-asm.txt and prints, per C2-compiled method, its allocation sites (arrays and
# vector boxes; those on slow paths count too, so compare the numbers before and after a change).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jar=$1 method=$2
shift 2
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
shim=/tmp/hsdis-shim
mkdir -p "$shim"
gcc -shared -fPIC -O2 -o "$shim/hsdis-amd64.so" "$here/hsdis-shim.c" -ldl
# the JVM finds hsdis beside libjvm or on LD_LIBRARY_PATH
LD_LIBRARY_PATH="$shim${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$java" -XX:+UnlockDiagnosticVMOptions "-XX:CompileCommand=print,$method" \
  -XX:CompileCommand=quiet --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED "$here/KernelAb.java" "$jar" "$jar" "${@:-8192 2048 3}" \
  > /tmp/kernel-asm.txt 2>&1
awk '/^Compiled method \(c2\)/ { name = $0; sub(/.*(io\.lightllm|jdk\.)/, "&", name); m[name] = 0; cur = name; next }
     /^Compiled method/ { cur = ""; next }
     cur != "" && /metadata\(\{type array|metadata\(.jdk\/incubator\/vector/ { m[cur]++ }
     END { for (k in m) printf "%4d allocation sites  %s\n", m[k], k }' /tmp/kernel-asm.txt
