package io.lightllm.cli;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * Command-line flags: {@code --name value}, {@code --name=value} and bare {@code --switch}.
 * The one flag parser of the CLI; every command reads its flags through it and reports
 * flags it did not read as errors.
 */
public final class Flags {
    private final Map<String, String> values = new LinkedHashMap<>();
    private final java.util.List<String> positional = new java.util.ArrayList<>();
    private int positionalRead;
    private final Set<String> read = new java.util.HashSet<>();

    private Flags() {
    }

    public static Flags parse(String[] args) {
        Flags f = new Flags();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.startsWith("-D")) {
                // TornadoVM users write -Dtornado.device=0:1 anywhere; the JVM only reads it before the main class
                throw new IllegalArgumentException("'" + a + "' is a JVM system property: put it before the command (scripts/lightllm "
                        + a + " <command> ...)");
            }
            if (!a.startsWith("--") || a.length() == 2) {
                if (!f.values.isEmpty()) {
                    throw new IllegalArgumentException("unexpected argument '" + a + "' (flags look like --name value)");
                }
                f.positional.add(a);
                continue;
            }
            String name = a.substring(2);
            String value;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            } else if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                value = args[++i];
            } else {
                value = "true";
            }
            if (f.values.put(name, value) != null) {
                throw new IllegalArgumentException("--" + name + " given twice");
            }
        }
        return f;
    }

    /** The next word before the flags (a subcommand), or an error naming what was expected. */
    public String positional(String what) {
        if (positionalRead >= positional.size()) {
            throw new IllegalArgumentException("missing " + what);
        }
        return positional.get(positionalRead++);
    }

    public String string(String name, String fallback) {
        read.add(name);
        return values.getOrDefault(name, fallback);
    }

    public String required(String name) {
        String v = string(name, null);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }

    public boolean has(String name) {
        read.add(name);
        return values.containsKey(name);
    }

    public boolean bool(String name) {
        String v = string(name, "false");
        if (!v.equals("true") && !v.equals("false")) {
            throw new IllegalArgumentException("--" + name + " takes no value (got '" + v + "')");
        }
        return v.equals("true");
    }

    public int integer(String name, int fallback, int min, int max) {
        String v = string(name, null);
        if (v == null) {
            return fallback;
        }
        try {
            int x = Integer.parseInt(v);
            if (x < min || x > max) {
                throw new IllegalArgumentException("--" + name + " must be between " + min + " and " + max + " (got " + x + ")");
            }
            return x;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " needs an integer (got '" + v + "')");
        }
    }

    /** A 64-bit integer (a seed, as the API takes it). */
    public long longInteger(String name, long fallback) {
        String v = string(name, null);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " needs a 64-bit integer (got '" + v + "')");
        }
    }

    public double number(String name, double fallback, double min, double max) {
        String v = string(name, null);
        if (v == null) {
            return fallback;
        }
        try {
            double x = Double.parseDouble(v);
            if (!(x >= min && x <= max)) {
                throw new IllegalArgumentException("--" + name + " must be between " + min + " and " + max + " (got " + v + ")");
            }
            return x;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " needs a number (got '" + v + "')");
        }
    }

    /** Fails on any flag that no command read: a typo must not be silently ignored. */
    public void checkAllRead() {
        if (positionalRead < positional.size()) {
            throw new IllegalArgumentException("unexpected argument '" + positional.get(positionalRead) + "'");
        }
        for (String name : values.keySet()) {
            if (!read.contains(name)) {
                throw new IllegalArgumentException("unknown flag --" + name);
            }
        }
    }
}
