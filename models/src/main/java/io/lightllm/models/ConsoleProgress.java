package io.lightllm.models;

import java.io.PrintStream;

/**
 * A one-line progress bar on stderr ("label [=====>     ]  42% 1.2/2.9 GiB", or "42/100" when it
 * counts items), redrawn with a carriage return at most every {@value #REDRAW_MILLIS} ms. A quiet
 * instance prints nothing.
 */
public final class ConsoleProgress implements AutoCloseable {
    private static final int WIDTH = 30;
    private static final long REDRAW_MILLIS = 100;

    private final String label;
    private final long total;
    private final PrintStream out;
    private final boolean bytes;
    private long done;
    private long lastDraw;

    private ConsoleProgress(String label, long total, PrintStream out, boolean bytes) {
        this.label = label;
        this.total = Math.max(total, 1);
        this.out = out;
        this.bytes = bytes;
    }

    /** A bar counting up to {@code totalBytes}; {@code quiet} gives one that prints nothing. */
    public static ConsoleProgress start(String label, long totalBytes, boolean quiet) {
        return new ConsoleProgress(label, totalBytes, quiet ? null : System.err, true);
    }

    /** A bar counting {@code total} items on {@code out}. */
    public static ConsoleProgress counting(String label, long total, PrintStream out) {
        return new ConsoleProgress(label, total, out, false);
    }

    /** One more item done. */
    public void advance() {
        advance(1);
    }

    public void advance(long bytes) {
        done = Math.min(total, done + bytes);
        long now = System.currentTimeMillis();
        if (out != null && (now - lastDraw >= REDRAW_MILLIS || done == total)) {
            draw();
            lastDraw = now;
        }
    }

    private void draw() {
        int filled = (int) (WIDTH * done / total);
        String bar = "=".repeat(filled) + (filled < WIDTH ? ">" + " ".repeat(WIDTH - filled - 1) : "");
        out.printf("\r%s [%s] %3d%% %s/%s", label, bar, 100 * done / total, bytes ? size(done) : Long.toString(done),
                bytes ? size(total) : Long.toString(total));
        out.flush();
    }

    private static String size(long bytes) {
        if (bytes >= 1L << 30) {
            return String.format("%.1f GiB", bytes / (double) (1L << 30));
        }
        return String.format("%.1f MiB", bytes / (double) (1L << 20));
    }

    /** Draws the final state and ends the line. */
    @Override
    public void close() {
        if (out != null) {
            draw();
            out.println();
        }
    }
}
