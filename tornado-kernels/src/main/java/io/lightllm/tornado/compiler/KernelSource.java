package io.lightllm.tornado.compiler;

/** TEMPORARY stub of the lead's compiler API (branch opencl); deleted when main's compiler is merged. */
public record KernelSource(String entryName, String source) {
}
