package io.lightllm.tornado.opencl;

/** An OpenCL call returned an error code; the message names the call and the CL_ constant. */
public final class OpenCLException extends RuntimeException {
    private final String call;
    private final int code;

    public OpenCLException(String call, int code) {
        this(call, code, null);
    }

    /** {@code detail} adds what the call was doing (a kernel name, a buffer size), or is null. */
    public OpenCLException(String call, int code, String detail) {
        super(call + " failed: " + CLErrors.name(code) + " (" + code + ")" + (detail == null ? "" : ": " + detail));
        this.call = call;
        this.code = code;
    }

    /** The OpenCL function that failed, e.g. {@code clBuildProgram}. */
    public String call() {
        return call;
    }

    /** The raw cl_int error code. */
    public int code() {
        return code;
    }
}
