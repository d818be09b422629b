import io.lightllm.tornado.api.DType;
import io.lightllm.tornado.api.NativeArray;
import io.lightllm.tornado.compiler.Dialect;
import io.lightllm.tornado.compiler.KernelCompiler;
import io.lightllm.tornado.compiler.KernelSource;
import io.lightllm.tornado.runtime.KernelRef;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes the CUDA C that the kernel compiler makes of one kernel method, for ptxas and cuobjdump without a GPU
 * (bench/sass/compare.sh). Usage: KernelCuda CLASS METHOD OUT.cu [ARG=DTYPE ...], ARG the index of a kernel argument
 * (the KernelContext not counted) whose element type is not f32: e.g. 2=BF16 for a GEMV's weights; *=DTYPE for every
 * NativeArray argument not named.
 */
public class KernelCuda {
    public static void main(String[] args) throws Exception {
        KernelRef kernel = KernelRef.of(Class.forName(args[0]), args[1]);
        int skip = kernel.usesContext() ? 1 : 0;
        DType[] types = new DType[kernel.parameterTypes().length - skip];
        for (int i = 3; i < args.length; i++) {
            String[] kv = args[i].split("=");
            if (kv[0].equals("*")) {
                for (int p = 0; p < types.length; p++) {
                    if (types[p] == null && kernel.parameterTypes()[p + skip] == NativeArray.class) {
                        types[p] = DType.valueOf(kv[1]);
                    }
                }
            } else {
                types[Integer.parseInt(kv[0])] = DType.valueOf(kv[1]);
            }
        }
        KernelSource source = KernelCompiler.compile(kernel, Dialect.CUDA, types);
        Files.writeString(Path.of(args[2]), source.source());
        System.out.println(source.entryName());
    }
}
