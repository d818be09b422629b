package io.lightllm.tornado.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.lightllm.testing.CudaCheck;
import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * What the bindings transcribe from the toolkit headers, checked against the headers
 * themselves: a C++ program built with nvcc against cuda.h and library_types.h prints the ABI
 * shape of every bound driver function (return and parameter kinds and sizes, taken from the
 * declarations with decltype, so nothing is linked) and the value of every constant, and the
 * test compares them with the Java side. cuBLAS and NVRTC headers are not part of the toolkit
 * installed on build machines; their constants are cross-checked by hand (see their classes).
 */
class CudaHeaderTest {
    private static final Path NVCC = Path.of(System.getProperty("lightllm.nvcc", "/usr/local/cuda-13.0/bin/nvcc"));

    @Test
    void driverSignaturesMatchCudaH() throws Exception {
        Map<String, FunctionDescriptor> bound = CudaDriver.signatures();
        assertTrue(bound.size() >= 40, "the driver bindings declare their functions: " + bound.keySet());
        StringBuilder calls = new StringBuilder();
        Map<String, String> expected = new TreeMap<>();
        for (var e : bound.entrySet()) {
            calls.append("  sig(\"").append(e.getKey()).append("\", (decltype(&").append(e.getKey()).append("))nullptr);\n");
            expected.put(e.getKey(), NativeLibrary.shape(e.getValue()));
        }
        Map<String, String> actual = runProbe(calls.toString());
        assertEquals(expected, actual, "ABI shapes of the bound driver functions (v void, b/i/j 1/4/8-byte integer, f float, p pointer)");
    }

    @Test
    void constantsMatchTheHeaders() throws Exception {
        Map<String, String> expected = new TreeMap<>();
        List<Class<?>> owners = List.of(CudaDriver.class, CudaBlas.class);
        for (Class<?> owner : owners) {
            for (Field f : owner.getDeclaredFields()) {
                boolean constant = Modifier.isStatic(f.getModifiers()) && Modifier.isFinal(f.getModifiers()) && f.getType() == int.class;
                // CUBLAS_* live in cublas_api.h, which build machines lack
                if (constant && (f.getName().startsWith("CU_") || f.getName().startsWith("CUDA_"))) {
                    f.setAccessible(true);
                    expected.put(f.getName(), Long.toString(f.getInt(null)));
                }
            }
        }
        assertTrue(expected.containsKey("CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT") && expected.containsKey("CUDA_R_16BF"), expected.toString());
        StringBuilder prints = new StringBuilder();
        for (String name : expected.keySet()) {
            prints.append("  std::printf(\"%s %lld\\n\", \"").append(name).append("\", (long long)(").append(name).append("));\n");
        }
        assertEquals(expected, runProbe(prints.toString()));
    }

    /** The CUDA_MEMCPY2D field offsets that the 2-D copy writes (a wrong one would copy from or to a wrong address). */
    @Test
    void memcpy2dLayoutMatchesCudaH() throws Exception {
        Map<String, String> expected = new TreeMap<>();
        Map<String, String> fields = Map.of("MEMCPY2D_SRC_MEMORY_TYPE", "srcMemoryType", "MEMCPY2D_SRC_DEVICE", "srcDevice",
                "MEMCPY2D_SRC_PITCH", "srcPitch", "MEMCPY2D_DST_MEMORY_TYPE", "dstMemoryType", "MEMCPY2D_DST_DEVICE", "dstDevice",
                "MEMCPY2D_DST_PITCH", "dstPitch", "MEMCPY2D_WIDTH_IN_BYTES", "WidthInBytes", "MEMCPY2D_HEIGHT", "Height");
        StringBuilder prints = new StringBuilder("  std::printf(\"MEMCPY2D_BYTES %zu\\n\", sizeof(CUDA_MEMCPY2D));\n");
        expected.put("MEMCPY2D_BYTES", Long.toString(CudaDriver.MEMCPY2D_BYTES));
        for (var e : fields.entrySet()) {
            Field f = CudaDriver.class.getDeclaredField(e.getKey());
            f.setAccessible(true);
            expected.put(e.getKey(), Long.toString(f.getLong(null)));
            prints.append("  std::printf(\"%s %zu\\n\", \"").append(e.getKey()).append("\", offsetof(CUDA_MEMCPY2D, ")
                    .append(e.getValue()).append("));\n");
        }
        assertEquals(expected, runProbe(prints.toString()));
    }

    /** The CUlaunchConfig and CUlaunchAttribute offsets that a programmatic dependent launch writes. */
    @Test
    void launchConfigLayoutMatchesCudaH() throws Exception {
        Map<String, String> fields = new TreeMap<>(Map.of("LAUNCH_CONFIG_GRID_X", "CUlaunchConfig, gridDimX", "LAUNCH_CONFIG_BLOCK_X",
                "CUlaunchConfig, blockDimX", "LAUNCH_CONFIG_SHARED_MEM", "CUlaunchConfig, sharedMemBytes", "LAUNCH_CONFIG_STREAM",
                "CUlaunchConfig, hStream", "LAUNCH_CONFIG_ATTRS", "CUlaunchConfig, attrs", "LAUNCH_CONFIG_NUM_ATTRS", "CUlaunchConfig, numAttrs",
                "LAUNCH_ATTRIBUTE_VALUE", "CUlaunchAttribute, value"));
        Map<String, String> expected = new TreeMap<>();
        StringBuilder prints = new StringBuilder("  std::printf(\"LAUNCH_CONFIG_BYTES %zu\\n\", sizeof(CUlaunchConfig));\n"
                + "  std::printf(\"LAUNCH_ATTRIBUTE_BYTES %zu\\n\", sizeof(CUlaunchAttribute));\n");
        for (String name : List.of("LAUNCH_CONFIG_BYTES", "LAUNCH_ATTRIBUTE_BYTES")) {
            Field f = CudaDriver.class.getDeclaredField(name);
            f.setAccessible(true);
            expected.put(name, Long.toString(f.getLong(null)));
        }
        for (var e : fields.entrySet()) {
            Field f = CudaDriver.class.getDeclaredField(e.getKey());
            f.setAccessible(true);
            expected.put(e.getKey(), Long.toString(f.getLong(null)));
            prints.append("  std::printf(\"%s %zu\\n\", \"").append(e.getKey()).append("\", offsetof(").append(e.getValue()).append("));\n");
        }
        assertEquals(expected, runProbe(prints.toString()));
    }

    /** Builds and runs a host program that includes cuda.h; returns its output as name -> value lines. */
    private static Map<String, String> runProbe(String body) throws IOException, InterruptedException {
        Assumptions.assumeTrue(CudaCheck.available(), "nvcc not found at " + NVCC);
        Path dir = Files.createTempDirectory("lj-cuda-header");
        Path cpp = dir.resolve("probe.cpp");
        Path exe = dir.resolve("probe");
        Files.writeString(cpp, """
                #include <cuda.h>
                #include <library_types.h>
                #include <cstddef>
                #include <cstdio>
                #include <type_traits>
                template <class T> char kind() {
                  if constexpr (std::is_void_v<T>) return 'v';
                  else if constexpr (std::is_pointer_v<T>) return 'p';
                  else if constexpr (std::is_same_v<T, float>) return 'f';
                  else if constexpr (std::is_same_v<T, double>) return 'd';
                  else if constexpr (std::is_integral_v<T> || std::is_enum_v<T>)
                    return sizeof(T) == 1 ? 'b' : sizeof(T) == 2 ? 's' : sizeof(T) == 4 ? 'i' : sizeof(T) == 8 ? 'j' : '?';
                  else return '?';
                }
                template <class R, class... A> void sig(const char* name, R (*)(A...)) {
                  const char params[] = {kind<A>()..., 0};
                  std::printf("%s %c(%s)\\n", name, kind<R>(), params);
                }
                int main() {
                """ + body + "  return 0;\n}\n");
        run(List.of(NVCC.toString(), "-std=c++17", "-cudart", "none", "-o", exe.toString(), cpp.toString()), "nvcc");
        String out = run(List.of(exe.toString()), "the probe");
        Map<String, String> values = new TreeMap<>();
        for (String line : out.split("\n")) {
            if (!line.isBlank()) {
                int space = line.indexOf(' ');
                values.put(line.substring(0, space), line.substring(space + 1).trim());
            }
        }
        return values;
    }

    private static String run(List<String> command, String what) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(new ArrayList<>(command)).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), what + " timed out");
        assertEquals(0, p.exitValue(), what + " failed:\n" + out);
        return out;
    }
}
