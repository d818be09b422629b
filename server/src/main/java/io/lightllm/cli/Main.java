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

        /** Every flag of the command with its default, for {@code lightllm <command> [<sub>] --help}. */
        String help(String subcommand);

        int run(Flags flags) throws Exception;
    }

    /** The model flags shared by generate, serve and bench static. */
    static final String MODEL_FLAGS = """
              --model PATH|PRESET      a Hugging Face directory, a .gguf file, or with --load-format dummy a preset
                                       (llama-1b, llama-8b, mixtral-8x7b, llava-1.5-7b, qwen-vl-chat) or config.json (required)
              --device D               jvm, opencl:P:D, cuda:N, or a comma-separated list for --tp (default: the device
                                       of -Dtornado.device=B:D or -Dlightllm.device=D, else jvm; see lightllm devices)
              --tp N                   tensor-parallel ranks (default 1)
              --threads N              kernel threads of the jvm device (default: the cores the JVM may use)
              --load-format auto|dummy dummy: random weights of the preset's shapes (default auto)
              --dtype bf16|f16|f32     dummy weights' type (default bf16)
              --quant none|int8|int4   weight-only int8 per row or int4 per group of 128 (default none;
                                       GGUF block types stay packed)
              --kv-dtype auto|f32|f16|i8|fp8
                                       KV pool type; i8 and fp8 (e4m3) hold codes and an f32 scale per token and
                                       head; auto: what the device's attention runs best over (default auto)
              --batch-invariant        kernels whose results do not depend on the batch: a prompt gives the same
                                       tokens alone, batched, or after a cached prefix (slower; docs/engine.md)
            """;

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
        if (Arrays.asList(args).contains("--help") || Arrays.asList(args).contains("-h")) {
            String sub = args.length > 1 && !args[1].startsWith("-") ? args[1] : null;
            System.out.println(c.help(sub));
            return 0;
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
        System.err.println("usage: lightllm <command> [flags]   (lightllm <command> --help lists a command's flags)\n\ncommands:");
        COMMANDS.forEach((name, c) -> System.err.printf("  %-10s %s%n", name, c.summary()));
    }
}
