#!/usr/bin/python3
"""Export a tiny Mamba-style model (PyTorch 1.13) to ONNX for e2e tests.

The selective scan is a torch.autograd.Function whose `symbolic` emits the
custom op longctx::SelectiveScan(u, delta, A, B, C) -> y. The depthwise
causal conv1d of real Mamba is left out (Conv is not in our op set).

Writes DIR/model.onnx, DIR/input_ids.npy (int64 [1,S]) and DIR/logits.npy.
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


def selective_scan_ref(u, delta, A, B, C):
    """y_t = sum_n h_t C_t,  h_t = exp(delta_t A) h_{t-1} + delta_t u_t B_t (differentiable)."""
    # u, delta: [B,S,E]; A: [E,N]; B, C: [B,S,N]
    batch, seq, e = u.shape
    h = u.new_zeros(batch, e, A.shape[1])
    ys = []
    for t in range(seq):
        dt = delta[:, t, :, None]                        # [B,E,1]
        h = torch.exp(dt * A) * h + dt * u[:, t, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))        # [B,E]
    return torch.stack(ys, dim=1)


class SelectiveScanFn(torch.autograd.Function):
    """Exports as one longctx::SelectiveScan node; autograd uses the reference."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C):
        return selective_scan_ref(u, delta, A, B, C)

    @staticmethod
    def symbolic(g, u, delta, A, B, C):
        # Same type/shape as u; without setType the exporter knows nothing
        # about the output and downstream shape inference degrades.
        return g.op("longctx::SelectiveScan", u, delta, A, B, C).setType(u.type())


class MambaBlock(nn.Module):
    def __init__(self, dim, d_state=16, expand=2, dt_rank=None):
        super().__init__()
        self.d_inner = expand * dim
        self.d_state = d_state
        self.dt_rank = dt_rank or math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=False)
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)

        # Mamba's init: softplus(dt bias) spans [1e-3, 1e-1]; A = -[1..N].
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.D = nn.Parameter(torch.ones(self.d_inner))

    def forward(self, x):
        xz = self.in_proj(x)
        u, z = xz.chunk(2, dim=-1)
        u = F.silu(u)
        dt, B, C = torch.split(self.x_proj(u), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt))
        A = -torch.exp(self.A_log.float())
        y = (SelectiveScanFn.apply if torch.onnx.is_in_onnx_export() else selective_scan_ref)(u, delta, A, B, C)
        y = y + u * self.D
        y = y * F.silu(z)
        return self.out_proj(y)


class ResidualBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.mixer = MambaBlock(dim)

    def forward(self, x):
        return x + self.mixer(self.norm(x))


class Mamba(nn.Module):
    def __init__(self, vocab, dim, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(ResidualBlock(dim) for _ in range(layers))
        self.norm_f = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)

    def forward(self, input_ids):
        x = self.embedding(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm_f(x))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--opset", type=int, default=14)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fold", action="store_true", help="do_constant_folding=True")
    p.add_argument("--grads", action="store_true",
                   help="export for training (TrainingMode.TRAINING, no constant folding) and "
                        "write the next-token loss and every parameter's gradient "
                        "(DIR/loss.npy, DIR/grads/<name>.npy)")
    p.add_argument("--out-dir", required=True)
    return p.parse_args()


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    model = Mamba(args.vocab, args.dim, args.layers).eval()

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
                                    else torch.onnx.TrainingMode.EVAL),
                          custom_opsets={"longctx": 1})
    np.save(os.path.join(args.out_dir, "input_ids.npy"), ids)
    np.save(os.path.join(args.out_dir, "logits.npy"), logits.astype(np.float32))
    if args.grads:
        write_gradients(model, input_ids, args.out_dir)
    print(f"wrote {args.out_dir}/model.onnx logits{list(logits.shape)}")


if __name__ == "__main__":
    main()
