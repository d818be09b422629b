package io.lightllm.tornado.cuda;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * One NVIDIA shared library opened through FFM (dlopen), and the C functions linked from it.
 * Every function is declared with its C signature as a {@link FunctionDescriptor}; the
 * declarations are kept even when the library is missing, so tests on machines without a GPU
 * can compare them against the toolkit headers.
 */
final class NativeLibrary {
    private final String soname;
    private final SymbolLookup lookup;
    private final String failure;
    private final String loadedFrom;
    private final Map<String, FunctionDescriptor> signatures = new LinkedHashMap<>();

    private NativeLibrary(String soname, SymbolLookup lookup, String loadedFrom, String failure) {
        this.soname = soname;
        this.lookup = lookup;
        this.loadedFrom = loadedFrom;
        this.failure = failure;
    }

    /**
     * Opens the first of {@code sonames} that loads: the exact file named by the system property
     * {@code property} when it is set, else each name through the dynamic loader's own search
     * (LD_LIBRARY_PATH, ldconfig), else each name in {@code directories}. Never throws: a library
     * that cannot be found is remembered with a message that says what was tried.
     */
    static NativeLibrary open(String property, List<String> sonames, List<Path> directories) {
        return open(property, sonames, directories, null);
    }

    /** As {@link #open(String, List, List)}; {@code absenceMeans} says what a missing library tells (e.g. "no NVIDIA driver"). */
    static NativeLibrary open(String property, List<String> sonames, List<Path> directories, String absenceMeans) {
        String configured = System.getProperty(property);
        if (configured != null && !configured.isBlank()) {
            try {
                return loaded(sonames.getFirst(), Path.of(configured).toAbsolutePath().toString());
            } catch (IllegalArgumentException e) {
                return missing(sonames.getFirst(), configured + " (from -D" + property + ") could not be loaded: " + e.getMessage());
            }
        }
        for (String name : sonames) {
            try {
                return loaded(sonames.getFirst(), name);
            } catch (IllegalArgumentException e) {
                // not on the loader's path: try the known directories next
            }
        }
        for (Path dir : directories) {
            for (String name : sonames) {
                Path file = dir.resolve(name);
                if (Files.isRegularFile(file)) {
                    try {
                        return loaded(sonames.getFirst(), file.toString());
                    } catch (IllegalArgumentException e) {
                        return missing(sonames.getFirst(), file + " exists but could not be loaded: " + e.getMessage());
                    }
                }
            }
        }
        return missing(sonames.getFirst(), sonames.getFirst() + " not found" + (absenceMeans == null ? "" : " (" + absenceMeans + ")") + ": tried " + String.join(", ", sonames)
                + " on the loader path (LD_LIBRARY_PATH, ldconfig) and in " + directories
                + "; set -D" + property + "=/path/to/" + sonames.getFirst());
    }

    private static NativeLibrary loaded(String soname, String nameOrPath) {
        SymbolLookup lookup = SymbolLookup.libraryLookup(nameOrPath, Arena.global());
        return new NativeLibrary(soname, lookup, nameOrPath, null);
    }

    private static NativeLibrary missing(String soname, String why) {
        return new NativeLibrary(soname, null, null, why);
    }

    /** The CUDA toolkit library directories worth searching when the loader path lacks a library. */
    static List<Path> toolkitDirectories() {
        List<Path> dirs = new ArrayList<>();
        for (String env : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String v = System.getenv(env);
            if (v != null && !v.isBlank()) {
                dirs.add(Path.of(v, "lib64"));
                dirs.add(Path.of(v, "lib"));
            }
        }
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        try (Stream<Path> s = Files.list(Path.of("/usr/local"))) {
            s.filter(p -> p.getFileName().toString().startsWith("cuda-"))
                    .sorted(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed())
                    .forEach(p -> dirs.add(p.resolve("lib64")));
        } catch (IOException e) {
            // no /usr/local: nothing to add
        }
        dirs.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        dirs.addAll(driverDirectories());
        return dirs;
    }

    /** Where NVIDIA drivers put libcuda.so.1 (distribution packages, the container toolkit). */
    static List<Path> driverDirectories() {
        return List.of(Path.of("/usr/lib/x86_64-linux-gnu"), Path.of("/usr/lib64"), Path.of("/usr/local/nvidia/lib64"),
                Path.of("/usr/lib/wsl/lib"));
    }

    /** Empty when loaded, else why not. */
    Optional<String> failure() {
        return Optional.ofNullable(failure);
    }

    String soname() {
        return soname;
    }

    /** The name or path the library was opened by. */
    String loadedFrom() {
        return loadedFrom;
    }

    /** Links {@code name}; null when the library is missing (callers check {@link #failure()} first). */
    MethodHandle function(String name, FunctionDescriptor signature) {
        signatures.put(name, signature);
        if (lookup == null) {
            return null;
        }
        MemorySegment address = lookup.find(name).orElse(null);
        return address == null ? null : Linker.nativeLinker().downcallHandle(address, signature);
    }

    /** Whether a declared function is missing from the loaded library (older driver, say). */
    List<String> missingFunctions(List<String> names) {
        if (lookup == null) {
            return names;
        }
        return names.stream().filter(n -> lookup.find(n).isEmpty()).toList();
    }

    /** Every function declared so far, by C name: what tests compare against the headers. */
    Map<String, FunctionDescriptor> signatures() {
        return Map.copyOf(signatures);
    }

    /**
     * The ABI shape of a signature: one letter for the return value, then the parameters in
     * parentheses: {@code v} void, {@code b} 1-byte, {@code i} 4-byte and {@code j} 8-byte
     * integer (enums included), {@code f} float, {@code d} double, {@code p} pointer.
     */
    static String shape(FunctionDescriptor fd) {
        StringBuilder sb = new StringBuilder();
        sb.append(fd.returnLayout().map(NativeLibrary::letter).orElse("v")).append('(');
        for (MemoryLayout l : fd.argumentLayouts()) {
            sb.append(letter(l));
        }
        return sb.append(')').toString();
    }

    private static String letter(MemoryLayout l) {
        if (l instanceof ValueLayout.OfByte) {
            return "b";
        }
        if (l instanceof ValueLayout.OfInt) {
            return "i";
        }
        if (l instanceof ValueLayout.OfLong) {
            return "j";
        }
        if (l instanceof ValueLayout.OfFloat) {
            return "f";
        }
        if (l instanceof ValueLayout.OfDouble) {
            return "d";
        }
        if (l instanceof java.lang.foreign.AddressLayout) {
            return "p";
        }
        throw new IllegalArgumentException("no ABI letter for " + l);
    }

    /** Reads a NUL-terminated C string at {@code address} (null gives null). */
    static String cString(MemorySegment address) {
        if (address == null || address.equals(MemorySegment.NULL)) {
            return null;
        }
        return address.reinterpret(Long.MAX_VALUE).getString(0);
    }

    @Override
    public String toString() {
        return soname + (loadedFrom != null ? " (" + loadedFrom + ")" : " (missing: " + failure + ")");
    }
}
