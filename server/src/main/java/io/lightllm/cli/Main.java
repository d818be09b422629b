package io.lightllm.cli;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * The {@code lightllm} command: {@code lightllm <command> [flags]}. Each command is a small
 * class; this one only dispatches and turns user errors into a message and exit code 2.
 */
public final class Main {
    /** A subcommand; returns the process exit code. */
    interface Command {
        String summary();

        int run(Flags flags) throws Exception;
    }

    private static final Map<String, Command> COMMANDS = new TreeMap<>(Map.of(
            "devices", new DevicesCommand(),
            "generate", new GenerateCommand(),
            "bench", new BenchCommand(),
            "serve", new ServeCommand()));

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    static int run(String[] args) {
        if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help") || args[0].equals("help")) {
            usage();
            return args.length == 0 ? 2 : 0;
        }
        Command c = COMMANDS.get(args[0]);
        if (c == null) {
            System.err.println("lightllm: unknown command '" + args[0] + "'");
            usage();
            return 2;
        }
        try {
            return c.run(Flags.parse(Arrays.copyOfRange(args, 1, args.length)));
        } catch (IllegalArgumentException | io.lightllm.models.ModelLoadException e) {
            // the user's input (a flag, a file, a checkpoint) is wrong: say what, exit 2
            System.err.println("lightllm " + args[0] + ": " + e.getMessage());
            return 2;
        } catch (Exception e) {
            System.err.println("lightllm " + args[0] + ": " + e);
            return 1;
        }
    }

    private static void usage() {
        System.err.println("usage: lightllm <command> [flags]\n\ncommands:");
        COMMANDS.forEach((name, c) -> System.err.printf("  %-10s %s%n", name, c.summary()));
    }
}
