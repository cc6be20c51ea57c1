#!/usr/bin/env bash
# The main job on the CPU default: set up and build, generate a small
# Llama-style model, compile it, run it, and check its logits against an
# independent numpy evaluation of the same ONNX graph.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

work="$LONGCTX_BUILD/demo"
rm -rf "$work" && mkdir -p "$work"
seq=512

echo "== generating a Llama-style model (d=256, 4 layers, 8 heads / 2 KV heads, vocab 32000)"
longctx-models llama --dim 256 --layers 4 --heads 8 --kv-heads 2 --ffn 704 --vocab 32000 \
  --seed 1 -o "$work/llama.onnx"
/usr/bin/python3 "$LONGCTX_ROOT/test/e2e/make_tokens.py" "$work/input_ids.npy" 1 "$seq" 32000

echo "== compiling for S=$seq"
longctx-compile "$work/llama.onnx" --inference --shape input_ids=1x$seq -o "$work/llama.lcx"
longctx-dump "$work/llama.lcx" --summary

echo "== running on the CPU"
longctx-run "$work/llama.lcx" --inputs input_ids="$work/input_ids.npy" --outputs "$work/out" --repeat 3

echo "== checking the logits against a numpy evaluation of the ONNX graph"
/usr/bin/python3 "$LONGCTX_ROOT/test/e2e/onnx_reference.py" "$work/llama.onnx" \
  --inputs input_ids="$work/input_ids.npy" --outputs "$work/reference" >/dev/null
/usr/bin/python3 "$LONGCTX_ROOT/test/e2e/compare_npy.py" "$work/out/logits.npy" \
  "$work/reference/logits.npy" --rtol 1e-4
echo "longctx demo: OK (artifact and outputs in $work)"
