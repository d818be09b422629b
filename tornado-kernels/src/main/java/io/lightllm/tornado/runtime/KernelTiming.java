package io.lightllm.tornado.runtime;

/** Device time of one kernel launch (or copy), recorded while profiling is on. */
public record KernelTiming(String name, long nanos) {
}
