package io.lightllm.tornado.cuda;

/** A failed CUDA, NVRTC or cuBLAS call, with the library's name for the error code. */
public final class CudaException extends RuntimeException {
    private final int code;

    CudaException(int code, String message) {
        super(message);
        this.code = code;
    }

    CudaException(String message, Throwable cause) {
        super(message, cause);
        this.code = -1;
    }

    /** The CUresult, nvrtcResult or cublasStatus_t returned by the failing call (-1 when none). */
    public int code() {
        return code;
    }
}
