"""The peer of the engine's decode attention: PyTorch's scaled_dot_product_attention, one query token per
request over a contiguous f16 KV cache of T tokens, Llama-3-8B's heads (32 query / 8 KV heads, head dimension
128, GQA through enable_gqa), with each of torch's fused backends (flash: FlashAttention-2 in torch's CUDA build;
efficient: the memory-efficient kernel; cuDNN) and with the one torch picks itself (auto). Each case is timed as a CUDA graph of 20 calls replayed (as the engine's
`bench kernels --graphs` times its launches), so Python's launch overhead is not counted. GB/s counts what the
engine's bench counts: the K and V bytes read once, B * T * 8 * 128 * 2 * 2.
usage: python3 sdpa_decode.py [BxT ...]   (default 1x1024 1x4096 16x1024 64x1024 16x4096); prints one JSON line"""
import json, sys, time
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

H, KV, D = 32, 8, 128
CALLS = 20


def timed(f):
    """Microseconds a call of f, from a graph of CALLS calls replayed."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            f()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(CALLS):
            f()
    for _ in range(5):
        g.replay()
    torch.cuda.synchronize()
    reps = 50
    t0 = time.perf_counter()
    for _ in range(reps):
        g.replay()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps / CALLS * 1e6


res = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "decode": {}}
for case in sys.argv[1:] or ["1x1024", "1x4096", "16x1024", "64x1024", "16x4096"]:
    B, T = (int(x) for x in case.split("x"))
    q = torch.randn(B, H, 1, D, dtype=torch.float16, device="cuda")
    k = torch.randn(B, KV, T, D, dtype=torch.float16, device="cuda")
    v = torch.randn(B, KV, T, D, dtype=torch.float16, device="cuda")
    gb = B * T * KV * D * 2 * 2 / 1e9
    row = {}
    for name, backends in (("flash", [SDPBackend.FLASH_ATTENTION]), ("efficient", [SDPBackend.EFFICIENT_ATTENTION]),
                           ("cudnn", [SDPBackend.CUDNN_ATTENTION]), ("auto", None)):
        kk, vv, gqa = k, v, True

        def f():
            if backends is None:
                return torch.nn.functional.scaled_dot_product_attention(q, kk, vv, enable_gqa=gqa)
            with sdpa_kernel(backends):
                return torch.nn.functional.scaled_dot_product_attention(q, kk, vv, enable_gqa=gqa)
        try:
            try:
                f()
            except RuntimeError:  # no GQA in this backend: K/V repeated per query head (more bytes read, counted as GQA's)
                kk, vv = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
                gqa = False
                row[name + "_gqa_repeated"] = True
                f()
            us = timed(f)
        except RuntimeError as e:  # a backend that does not take this case at all
            row[name] = {"error": str(e).splitlines()[0][:120]}
            continue
        row[name] = {"us": round(us, 2), "gbs": round(gb / us * 1e6, 1)}
    res["decode"][case] = row
print(json.dumps(res))
