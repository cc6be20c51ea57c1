#!/usr/bin/python3
"""Export a tiny Llama-style decoder (PyTorch 1.13) to ONNX for e2e tests.

Writes DIR/model.onnx, DIR/input_ids.npy (int64 [1,S]) and DIR/logits.npy
(PyTorch's float32 logits [1,S,V]). Written the way typical user code looks
so the exporter emits the usual shape/mask subgraphs.
"""
import argparse
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_export_common import write_gradients


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


class RotaryEmbedding(nn.Module):
    """RoPE. mode "cached": cos/sin tables precomputed for max_seq positions and
    sliced to S; mode "arange": computed in forward from torch.arange(S)
    (exports Range/Cos/Sin instead of constant tables)."""

    def __init__(self, head_dim, max_seq, theta=10000.0, mode="cached"):
        super().__init__()
        self.mode = mode
        inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        t = torch.arange(max_seq).float()
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos(), persistent=False)
        self.register_buffer("sin_cached", emb.sin(), persistent=False)

    def forward(self, q, k):
        S = q.shape[-2]
        if self.mode == "arange":
            t = torch.arange(S, device=q.device, dtype=torch.float32)
            freqs = t[:, None] * self.inv_freq[None, :]
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos()[None, None], emb.sin()[None, None]
        else:
            cos = self.cos_cached[:S][None, None]  # [1,1,S,D]
            sin = self.sin_cached[:S][None, None]
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def repeat_kv(x, n_rep):
    """[B, KV, S, D] -> [B, KV*n_rep, S, D] (HF-style expand + reshape)."""
    B, KV, S, D = x.shape
    if n_rep == 1:
        return x
    x = x[:, :, None, :, :].expand(B, KV, n_rep, S, D)
    return x.reshape(B, KV * n_rep, S, D)


class Attention(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, max_seq, rope="cached"):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = dim // n_heads
        self.q_proj = nn.Linear(dim, n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * self.head_dim, dim, bias=False)
        self.rope = RotaryEmbedding(self.head_dim, max_seq, mode=rope)

    def forward(self, x):
        B, S, _ = x.shape
        q = self.q_proj(x).view(B, S, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, S, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = self.rope(q, k)
        k = repeat_kv(k, self.n_heads // self.n_kv_heads)
        v = repeat_kv(v, self.n_heads // self.n_kv_heads)

        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.head_dim)
        if MASK_STYLE == "additive":
            # Hugging Face style: add 0 below the diagonal, the dtype's minimum above.
            bias = torch.full((S, S), torch.finfo(scores.dtype).min, device=x.device).triu(1)
            scores = scores + bias
        else:
            causal = torch.triu(torch.ones(S, S, dtype=torch.bool, device=x.device), diagonal=1)
            scores = scores.masked_fill(causal, torch.finfo(scores.dtype).min)
        probs = F.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, S, -1)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, hidden, max_seq, rope):
        super().__init__()
        self.input_layernorm = RMSNorm(dim)
        self.self_attn = Attention(dim, n_heads, n_kv_heads, max_seq, rope)
        self.post_attention_layernorm = RMSNorm(dim)
        self.mlp = MLP(dim, hidden)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, vocab, dim, layers, n_heads, n_kv_heads, hidden, max_seq, rope="cached"):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            DecoderLayer(dim, n_heads, n_kv_heads, hidden, max_seq, rope) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids):
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--hidden", type=int, default=0, help="MLP width (default 8*dim/3 rounded to 16)")
    p.add_argument("--max-seq", type=int, default=0, help="RoPE table length (default max(1024, seq))")
    p.add_argument("--rope", choices=["cached", "arange"], default="cached",
                   help="RoPE tables: precomputed buffers sliced to S, or torch.arange in forward")
    p.add_argument("--mask", choices=["masked_fill", "additive"], default="masked_fill",
                   help="how the causal mask is applied to the attention scores")
    p.add_argument("--opset", type=int, default=14)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fold", action="store_true", help="do_constant_folding=True")
    p.add_argument("--grads", action="store_true",
                   help="export for training (TrainingMode.TRAINING, no constant folding) and "
                        "write the next-token loss and every parameter's gradient "
                        "(DIR/loss.npy, DIR/grads/<name>.npy)")
    p.add_argument("--out-dir", required=True)
    return p.parse_args()


MASK_STYLE = "masked_fill"


def main():
    global MASK_STYLE
    args = parse_args()
    MASK_STYLE = args.mask
    torch.manual_seed(args.seed)
    hidden = args.hidden or (8 * args.dim // 3 + 15) // 16 * 16
    max_seq = args.max_seq or max(1024, args.seq)
    model = Llama(args.vocab, args.dim, args.layers, args.heads, args.kv_heads,
                  hidden, max_seq, args.rope).eval()

    rng = np.random.default_rng(args.seed)
    ids = rng.integers(0, args.vocab, size=(1, args.seq), dtype=np.int64)
    input_ids = torch.from_numpy(ids)

    os.makedirs(args.out_dir, exist_ok=True)
    with torch.no_grad():
        logits = model(input_ids).float().numpy()
        torch.onnx.export(model, (input_ids,), os.path.join(args.out_dir, "model.onnx"),
                          opset_version=args.opset, input_names=["input_ids"],
                          output_names=["logits"], do_constant_folding=args.fold and not args.grads,
                          training=(torch.onnx.TrainingMode.TRAINING if args.grads
                                    else torch.onnx.TrainingMode.EVAL))
    np.save(os.path.join(args.out_dir, "input_ids.npy"), ids)
    np.save(os.path.join(args.out_dir, "logits.npy"), logits.astype(np.float32))
    if args.grads:
        write_gradients(model, input_ids, args.out_dir)
    print(f"wrote {args.out_dir}/model.onnx logits{list(logits.shape)}")


if __name__ == "__main__":
    main()
