#!/usr/bin/env python3
"""CPU training step: longctx vs PyTorch eager, same models, data and threads.

A training step is forward, next-token cross-entropy, backward and AdamW.
Models (byte-level, vocab 256) are the PyTorch modules of test/models,
exported with torch.onnx.export in training mode, compiled with
`longctx-compile --train` and run with `longctx-run --data ... --log-json`;
PyTorch runs the same modules. Prints one JSON object with tokens/s and step
time for each. Needs python3-torch and a build.

  /usr/bin/python3 bench/step_cpu.py [--build build] [--seq 1024] [--steps 8]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "models"))
import export_torch_llama  # noqa: E402
import export_torch_mamba  # noqa: E402

DATA = "/usr/share/common-licenses/GPL-3"


def torch_step_seconds(model, ids, steps, lr):
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def longctx_step_seconds(build, model, ids, steps, tmp, name, threads):
    onnx_path = os.path.join(tmp, name + ".onnx")
    with torch.no_grad():
        torch.onnx.export(model, (ids,), onnx_path, opset_version=14, input_names=["input_ids"],
                          output_names=["logits"], do_constant_folding=False,
                          training=torch.onnx.TrainingMode.TRAINING,
                          custom_opsets={"longctx": 1})
    lcx = os.path.join(tmp, name + ".lcx")
    subprocess.run([os.path.join(build, "bin", "longctx-compile"), onnx_path, "--train",
                    "--optimizer", "adamw", "--lr", "1e-3", "-o", lcx], check=True)
    log = os.path.join(tmp, name + ".jsonl")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run([os.path.join(build, "bin", "longctx-run"), lcx, "--data", DATA,
                    "--steps", str(steps + 1), "--log-json", log, "--threads", str(threads)],
                   check=True, capture_output=True, env=env)
    rows = [json.loads(line) for line in open(log)]
    return float(np.median([r["step_seconds"] for r in rows[1:]])), rows[-1]["peak_bytes"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--seq", type=int, default=1024)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = torch.from_numpy(np.frombuffer(open(DATA, "rb").read()[: args.seq], dtype=np.uint8)
                           .astype(np.int64)).reshape(1, args.seq)
    models = {
        "llama d=128 L=2 H=4": export_torch_llama.Llama(256, 128, 2, 4, 4, 352, max(1024, args.seq)),
        "mamba d=64 E=128 N=16 L=2": export_torch_mamba.Mamba(256, 64, 2),
    }
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, model) in enumerate(models.items()):
            ours, peak = longctx_step_seconds(args.build, model, ids, args.steps, tmp, f"m{i}",
                                              args.threads)
            theirs = torch_step_seconds(model, ids, args.steps, 1e-3)
            tokens = ids.numel()
            results.append({"model": name, "batch": 1, "seq": args.seq, "threads": args.threads,
                            "longctx_step_ms": round(1e3 * ours, 1),
                            "longctx_tokens_per_s": round(tokens / ours, 1),
                            "longctx_peak_bytes": peak,
                            "torch_eager_step_ms": round(1e3 * theirs, 1),
                            "torch_tokens_per_s": round(tokens / theirs, 1),
                            "longctx_over_torch": round(ours / theirs, 3)})
    print(json.dumps({"benchmark": "step_cpu", "torch": torch.__version__, "results": results},
                     indent=2))


if __name__ == "__main__":
    main()
