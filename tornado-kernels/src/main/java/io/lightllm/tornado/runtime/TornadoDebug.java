package io.lightllm.tornado.runtime;

/**
 * TornadoVM's debugging flags, printing to stderr: {@code -Dtornado.printKernel=true} prints the
 * C source (OpenCL C, CUDA C) a device builds for each kernel, once per build;
 * {@code -Dtornado.threadInfo=true} prints one line per launch with the shape the backend runs it
 * with; {@code -Dtornado.debug=true} does both and says where a task graph's moved tasks run.
 * The flags are read at each use, so a program (or a test) can turn them on while it runs.
 */
public final class TornadoDebug {
    private static final String PREFIX = "[tornado] ";

    private TornadoDebug() {
    }

    public static boolean debug() {
        return Boolean.getBoolean("tornado.debug");
    }

    public static boolean printKernel() {
        return debug() || Boolean.getBoolean("tornado.printKernel");
    }

    public static boolean threadInfo() {
        return debug() || Boolean.getBoolean("tornado.threadInfo");
    }

    /** The source {@code deviceId} built for {@code kernel}, between two marked lines ({@code language}: "OpenCL C", "CUDA C"). */
    public static void kernelSource(String deviceId, String kernel, String language, String source) {
        if (printKernel()) {
            String text = source.endsWith("\n") ? source : source + "\n";
            System.err.print(PREFIX + language + " of " + kernel + " for " + deviceId + ":\n" + text + PREFIX + "end of " + kernel + "\n");
        }
    }

    /**
     * One line for one launch: {@code shape} says how the backend spreads the work (global/local
     * sizes, CUDA grid and block, JVM threads). Callers on hot paths check {@link #threadInfo()}
     * first, so that no launch builds the text for nothing.
     */
    public static void launch(String deviceId, String kernel, String shape) {
        if (threadInfo()) {
            System.err.println(PREFIX + "launch " + kernel + " on " + deviceId + ": " + shape);
        }
    }

    /** A line of {@code -Dtornado.debug} only. */
    static void note(String line) {
        if (debug()) {
            System.err.println(PREFIX + line);
        }
    }
}
