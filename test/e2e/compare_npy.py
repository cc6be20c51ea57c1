#!/usr/bin/python3
"""Compare two .npy files: rel = max|a-b| / max|b| (B is the reference).

Prints one line `max_abs=... max_ref=... rel=... OK|FAIL`; exits 1 on FAIL,
on shape/dtype mismatch, or on NaN/Inf placement mismatch.
"""
import argparse
import sys

import numpy as np


def compare(a, b, rtol):
    """Return (ok, line) for actual `a` against reference `b`."""
    if a.shape != b.shape:
        return False, f"shape mismatch: {list(a.shape)} vs reference {list(b.shape)} FAIL"
    if a.dtype != b.dtype:
        return False, f"dtype mismatch: {a.dtype} vs reference {b.dtype} FAIL"
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    # Non-finite values must sit at the same places with the same value;
    # otherwise max() below would hide them (NaN) or blow up (Inf - Inf).
    fa, fb = np.isfinite(a64), np.isfinite(b64)
    nonfinite_ok = np.array_equal(fa, fb) and np.array_equal(
        np.nan_to_num(a64[~fa], nan=0.5), np.nan_to_num(b64[~fb], nan=0.5))
    if a64.size:
        max_abs = float(np.max(np.abs(a64[fa & fb] - b64[fa & fb]), initial=0.0))
        max_ref = float(np.max(np.abs(b64[fb]), initial=0.0))
    else:
        max_abs = max_ref = 0.0
    if max_ref > 0:
        rel = max_abs / max_ref
    else:
        rel = 0.0 if max_abs == 0 else float("inf")
    ok = nonfinite_ok and rel <= rtol
    line = f"max_abs={max_abs:.6g} max_ref={max_ref:.6g} rel={rel:.6g}"
    if not nonfinite_ok:
        line += " (non-finite mismatch)"
    return ok, line + (" OK" if ok else " FAIL")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("actual", help="A.npy (e.g. compiled runtime output)")
    p.add_argument("reference", help="B.npy (reference output)")
    p.add_argument("--rtol", type=float, default=1e-4)
    args = p.parse_args(argv)
    ok, line = compare(np.load(args.actual), np.load(args.reference), args.rtol)
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
