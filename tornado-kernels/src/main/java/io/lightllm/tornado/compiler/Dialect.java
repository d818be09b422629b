package io.lightllm.tornado.compiler;

/** TEMPORARY stub of the lead's compiler API (branch opencl); deleted when main's compiler is merged. */
public enum Dialect { OPENCL, CUDA }
