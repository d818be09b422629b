package io.lightllm.tornado.runtime;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;

/**
 * Keeps the JVM's own handlers of the fault signals in place while native drivers run in the process.
 *
 * <p>Why: the JVM takes SIGSEGV, SIGBUS, SIGILL and SIGFPE in normal operation (safepoint polls, implicit null
 * checks, and integer division by zero, which compiled Java code leaves to the CPU's trap). LLVM, inside PoCL's
 * kernel compiler (and other LLVM-based drivers), installs its own handlers for the first three when it first
 * compiles, and PoCL one for SIGFPE that skips the faulting division. Measured here on PoCL 3.1 / LLVM 15: after one
 * kernel, JIT-compiled Java {@code 7 / 0} returned 7 instead of throwing, and LLVM's handlers, installed with
 * SA_RESETHAND, leave a window in which a second thread's safepoint poll meets the default action: the JVM dies with
 * "Segmentation fault" and no hs_err file (seen once in CI at a tensor-parallel test's start).
 *
 * <p>What: {@link #snapshot} records the handlers before any driver call; {@link #restore}, called after the calls
 * that can compile (program builds, context creation, the synchronisations after which lazily compiled kernels have
 * run), puts the recorded ones back where a library replaced them, and says so once. LLVM installs its handlers once
 * per process (it counts them as installed afterwards), so the window closes after the first compile. The complete
 * remedy is the JDK's signal chaining, {@code LD_PRELOAD=$JAVA_HOME/lib/libjsig.so}, under which a library's
 * handler never replaces the JVM's and still gets the signals that are not the JVM's (PoCL's for a kernel's own
 * division by zero): {@code scripts/lightllm} and the tests run that way, and then {@link #restore} finds nothing
 * to do. {@code -Dlightllm.signals.restore=false} leaves the libraries' handlers in place. Linux only.
 */
public final class JvmSignalHandlers {
    private static final System.Logger LOG = System.getLogger(JvmSignalHandlers.class.getName());
    /** SIGILL, SIGFPE, SIGBUS, SIGSEGV on Linux (x86-64 and AArch64). */
    private static final int[] SIGNALS = {4, 8, 7, 11};
    private static final String[] NAMES = {"SIGILL", "SIGFPE", "SIGBUS", "SIGSEGV"};
    /** Bytes of glibc's struct sigaction (152 on 64-bit Linux), rounded up; the handler is its first word. */
    private static final int SIGACTION_BYTES = 256;
    private static final MethodHandle SIGACTION, DLADDR;
    private static final boolean ENABLED;
    private static MemorySegment[] recorded;
    private static boolean warned;

    static {
        MethodHandle sigaction = null, dladdr = null;
        boolean ok = false;
        try {
            if (System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")
                    && Boolean.parseBoolean(System.getProperty("lightllm.signals.restore", "true"))) {
                Linker l = Linker.nativeLinker();
                sigaction = l.downcallHandle(l.defaultLookup().find("sigaction").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
                dladdr = l.downcallHandle(l.defaultLookup().find("dladdr").orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
                ok = true;
            }
        } catch (RuntimeException | Error e) {
            ok = false; // no native access or no libc symbol: leave the handlers alone
        }
        SIGACTION = sigaction;
        DLADDR = dladdr;
        ENABLED = ok;
    }

    private JvmSignalHandlers() {
    }

    /** Records the current handlers, once per process: call before the first call into a driver. */
    public static synchronized void snapshot() {
        if (!ENABLED || recorded != null) {
            return;
        }
        MemorySegment[] now = new MemorySegment[SIGNALS.length];
        for (int i = 0; i < SIGNALS.length; i++) {
            now[i] = current(SIGNALS[i], Arena.global());
            if (now[i] == null) {
                return;
            }
        }
        recorded = now;
    }

    /**
     * Puts back every recorded handler that a library has replaced since {@link #snapshot}; {@code after} names the
     * call that ran (for the one warning).
     */
    public static synchronized void restore(String after) {
        if (!ENABLED || recorded == null) {
            return;
        }
        int restored = 0;
        StringBuilder who = new StringBuilder();
        try (Arena arena = Arena.ofConfined()) {
            for (int i = 0; i < SIGNALS.length; i++) {
                MemorySegment now = current(SIGNALS[i], arena);
                long handler = now == null ? 0 : now.get(ValueLayout.JAVA_LONG, 0);
                if (now == null || handler == recorded[i].get(ValueLayout.JAVA_LONG, 0)) {
                    continue;
                }
                if ((int) SIGACTION.invokeExact(SIGNALS[i], recorded[i], MemorySegment.NULL) == 0) {
                    restored++;
                    who.append(who.isEmpty() ? "" : ", ").append(NAMES[i]).append(" (").append(library(handler, arena)).append(')');
                }
            }
        } catch (Throwable t) {
            return; // a failed downcall: leave the handlers as they are
        }
        if (restored > 0 && !warned) {
            warned = true;
            LOG.log(System.Logger.Level.WARNING, "native code replaced the JVM's signal handlers during " + after + ": " + who
                    + "; put the JVM's back (Java's integer division and null checks rely on them). Run with "
                    + "LD_PRELOAD=" + System.getProperty("java.home") + "/lib/libjsig.so to chain them instead (scripts/lightllm does)");
        }
    }

    private static MemorySegment current(int signal, Arena arena) {
        try {
            MemorySegment action = arena.allocate(SIGACTION_BYTES, 16);
            return (int) SIGACTION.invokeExact(signal, MemorySegment.NULL, action) == 0 ? action : null;
        } catch (Throwable t) {
            return null;
        }
    }

    /** The shared library holding a handler's code (dladdr), for the warning. */
    private static String library(long handler, Arena arena) {
        try {
            MemorySegment info = arena.allocate(32, 8);
            if ((int) DLADDR.invokeExact(MemorySegment.ofAddress(handler), info) != 0) {
                return info.get(ValueLayout.ADDRESS, 0).reinterpret(4096).getString(0);
            }
        } catch (Throwable t) {
            // fall through
        }
        return String.format("0x%x", handler);
    }
}
