#!/usr/bin/env python3
"""CPU forward pass: longctx vs PyTorch eager on the same Llama-style model.

Builds the model of test/models/export_torch_llama.py in PyTorch, exports it to
ONNX (static shapes), compiles it with longctx-compile, times longctx-run and
PyTorch's forward on the same inputs and thread count, checks that the logits
agree, and prints one JSON object. Needs python3-torch (Debian) and a build.

  /usr/bin/python3 bench/forward_cpu.py [--build build] [--seq 512 2048] [--threads 2]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))
from export_torch_llama import Llama  # noqa: E402


def time_longctx(build, lcx, ids_path, out_dir, repeat, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    run = [os.path.join(build, "bin", "longctx-run"), lcx, "--inputs", f"input_ids={ids_path}",
           "--threads", str(threads)]
    subprocess.run(run + ["--outputs", out_dir], check=True, capture_output=True, env=env)  # warm-up
    done = subprocess.run(run + ["--repeat", str(repeat)], check=True, capture_output=True,
                          text=True, env=env)
    return float(re.search(r"([0-9.]+) ms per run", done.stderr).group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--seq", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hidden = (8 * args.dim // 3 + 15) // 16 * 16
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for seq in args.seq:
            model = Llama(args.vocab, args.dim, args.layers, args.heads, args.kv_heads, hidden,
                          max(1024, seq), "cached").eval()
            ids = torch.randint(0, args.vocab, (1, seq))
            onnx_path = os.path.join(tmp, f"llama{seq}.onnx")
            with torch.no_grad():
                torch.onnx.export(model, (ids,), onnx_path, opset_version=14,
                                  input_names=["input_ids"], output_names=["logits"])
                torch_times = []
                for _ in range(args.repeat + 1):
                    start = time.perf_counter()
                    reference = model(ids)
                    torch_times.append(time.perf_counter() - start)
            ids_path = os.path.join(tmp, "ids.npy")
            np.save(ids_path, ids.numpy())
            lcx = os.path.join(tmp, f"llama{seq}.lcx")
            start = time.perf_counter()
            subprocess.run([os.path.join(args.build, "bin", "longctx-compile"), onnx_path,
                            "--inference", "-o", lcx], check=True)
            compile_s = time.perf_counter() - start
            out_dir = os.path.join(tmp, "out")
            ms = time_longctx(args.build, lcx, ids_path, out_dir, args.repeat, args.threads)
            ours = np.load(os.path.join(out_dir, "logits.npy"))
            ref = reference.numpy()
            torch_ms = 1e3 * min(torch_times[1:])
            results.append({
                "model": f"llama d={args.dim} L={args.layers} H={args.heads}/{args.kv_heads} V={args.vocab}",
                "seq": seq,
                "threads": args.threads,
                "longctx_ms": round(ms, 2),
                "torch_eager_ms": round(torch_ms, 2),
                "longctx_over_torch": round(ms / torch_ms, 3),
                "compile_s": round(compile_s, 2),
                "max_rel_err": float(np.abs(ours - ref).max() / np.abs(ref).max()),
            })
    print(json.dumps({"benchmark": "forward_cpu", "torch": torch.__version__, "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
