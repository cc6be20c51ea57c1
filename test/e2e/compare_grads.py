"""Compares dumped gradients with a reference directory, tensor by tensor:
compare_grads.py OURS_DIR REF_DIR [--rtol 1e-4]. Every REF_DIR/<name>.npy must
have a match in OURS_DIR; prints one line per tensor and exits 1 on any FAIL."""
import argparse
import os
import sys

import numpy as np

p = argparse.ArgumentParser()
p.add_argument("ours")
p.add_argument("ref")
p.add_argument("--rtol", type=float, default=1e-4)
args = p.parse_args()

failed = 0
names = sorted(f for f in os.listdir(args.ref) if f.endswith(".npy"))
if not names:
    sys.exit(f"no .npy files in {args.ref}")
for name in names:
    ref = np.load(os.path.join(args.ref, name))
    path = os.path.join(args.ours, name)
    if not os.path.exists(path):
        print(f"{name}: MISSING")
        failed += 1
        continue
    ours = np.load(path)
    if ours.shape != ref.shape:
        print(f"{name}: shape {ours.shape} vs {ref.shape} FAIL")
        failed += 1
        continue
    scale = float(np.abs(ref).max())
    rel = float(np.abs(ours.astype(np.float64) - ref).max()) / scale if scale else 0.0
    ok = rel <= args.rtol
    failed += not ok
    print(f"{name}: rel={rel:.3g} {'OK' if ok else 'FAIL'}")
print(f"{len(names) - failed}/{len(names)} gradients match")
sys.exit(1 if failed else 0)
