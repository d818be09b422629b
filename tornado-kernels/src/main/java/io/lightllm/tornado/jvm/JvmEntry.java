package io.lightllm.tornado.jvm;

import io.lightllm.tornado.api.KernelContext;

/** Generated per kernel: unpacks the arguments and calls the kernel (or its grid-stride copy). */
public interface JvmEntry {
    void run(KernelContext context, int thread, int threads, Object[] args);
}
