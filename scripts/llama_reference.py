# An independent float64 NumPy forward pass of a tiny Llama-family fixture (default rope, no scaling),
# used to check golden.json itself: python3 scripts/llama_reference.py ../shared/fixtures/tiny/llama
# It prints how far the golden last-position logits are from an exact float64 computation.
import json, struct, numpy as np, sys
d = sys.argv[1]
cfg = json.load(open(d + '/config.json'))
raw = open(d + '/model.safetensors', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8+n]); base = 8+n
W = {}
for k, v in hdr.items():
    if k == '__metadata__': continue
    a, b = v['data_offsets']; buf = raw[base+a:base+b]
    if v['dtype'] == 'BF16':
        u = np.frombuffer(buf, dtype=np.uint16).astype(np.uint32) << 16
        arr = u.view(np.float32)
    elif v['dtype'] == 'F16': arr = np.frombuffer(buf, dtype=np.float16).astype(np.float32)
    else: arr = np.frombuffer(buf, dtype=np.float32)
    W[k] = arr.reshape(v['shape']).astype(np.float64)
g = json.load(open(d + '/golden.json'))['cases'][0]
ids = g['input_ids']; T = len(ids)
H = cfg['hidden_size']; nh = cfg['num_attention_heads']; nkv = cfg['num_key_value_heads']; hd = cfg.get('head_dim', H // nh)
eps = cfg['rms_norm_eps']; theta = cfg.get('rope_parameters', {}).get('rope_theta', cfg.get('rope_theta', 10000.0))
def rms(x, w): return x / np.sqrt((x*x).mean(-1, keepdims=True) + eps) * w
inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
ang = np.arange(T)[:, None] * inv[None, :]; cos = np.cos(np.concatenate([ang, ang], -1)); sin = np.sin(np.concatenate([ang, ang], -1))
def rope(x):  # x [T, heads, hd]
    x1, x2 = x[..., :hd//2], x[..., hd//2:]
    rot = np.concatenate([-x2, x1], -1)
    return x * cos[:, None, :] + rot * sin[:, None, :]
x = W['model.embed_tokens.weight'][ids]
for l in range(cfg['num_hidden_layers']):
    p = f'model.layers.{l}.'
    h = rms(x, W[p+'input_layernorm.weight'])
    def lin(name, v):
        y = v @ W[p+name+'.weight'].T
        if p+name+'.bias' in W: y = y + W[p+name+'.bias']
        return y
    q = rope(lin('self_attn.q_proj', h).reshape(T, nh, hd)); k = rope(lin('self_attn.k_proj', h).reshape(T, nkv, hd)); v = lin('self_attn.v_proj', h).reshape(T, nkv, hd)
    rep = nh // nkv; k = np.repeat(k, rep, 1); v = np.repeat(v, rep, 1)
    s = np.einsum('thd,shd->hts', q, k) / np.sqrt(hd)
    s = s + np.triu(np.full((T, T), -np.inf), 1)[None]
    s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
    o = np.einsum('hts,shd->thd', s, v).reshape(T, nh*hd)
    x = x + o @ W[p+'self_attn.o_proj.weight'].T
    h = rms(x, W[p+'post_attention_layernorm.weight'])
    gt = h @ W[p+'mlp.gate_proj.weight'].T; up = h @ W[p+'mlp.up_proj.weight'].T
    x = x + (gt / (1 + np.exp(-gt)) * up) @ W[p+'mlp.down_proj.weight'].T
x = rms(x, W['model.norm.weight'])
head = W['lm_head.weight'] if 'lm_head.weight' in W else W['model.embed_tokens.weight']
logits = x[-1] @ head.T
gold = np.array(g['last_logits'])
print('max |numpy(f64) - golden| =', np.abs(logits - gold).max(), ' argmax', logits.argmax(), gold.argmax())
