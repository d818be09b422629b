"""The peer of the engine's prefill attention: PyTorch's scaled_dot_product_attention with its flash
backend (FlashAttention-2 in torch's CUDA build), causal, Llama-3-8B's heads (32 query / 8 KV heads,
head dimension 128, GQA through enable_gqa), f16, one sequence of T tokens, or R sequences of T (RxT: the
batch of equal prompts FlashAttention's own benchmarks time, 32x512 = 16k tokens). TFLOP/s counts what the
engine's bench counts: R * 4 * T * T / 2 * heads * headDim (causal half of QK^T and PV).
usage: python3 sdpa_attention.py [T|RxT ...]   (default 512 1024 4096 32x512); prints one JSON line"""
import json, sys, time
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

H, KV, D = 32, 8, 128
res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "prefill": {}}
for case in sys.argv[1:] or ["512", "1024", "4096", "32x512"]:
    R, T = (int(x) for x in case.split("x")) if "x" in case else (1, int(case))
    q = torch.randn(R, H, T, D, dtype=torch.float16, device="cuda")
    k = torch.randn(R, KV, T, D, dtype=torch.float16, device="cuda")
    v = torch.randn(R, KV, T, D, dtype=torch.float16, device="cuda")
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        try:
            f()
        except RuntimeError:  # a flash backend without GQA: K/V repeated per query head (more bytes, same flops)
            k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
            f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            res["gqa_repeated"] = True
        for _ in range(10):
            f()
        torch.cuda.synchronize()
        reps = 200 if T <= 1024 else 50
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        torch.cuda.synchronize()
        s = (time.perf_counter() - t0) / reps
    flops = R * 4.0 * T * T / 2 * H * D
    res["prefill"][case] = {"us": round(s * 1e6, 1), "tflops": round(flops / s / 1e12, 1)}
print(json.dumps(res))
