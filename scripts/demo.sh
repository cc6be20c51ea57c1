#!/usr/bin/env bash
# The main job on the CPU default: set up and build, generate a small
# byte-level Llama-style model, compile a training step and train it on a
# text file, then compile the same model for inference and check its logits
# against an independent numpy evaluation of the ONNX graph.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

work="$LONGCTX_BUILD/demo"
rm -rf "$work" && mkdir -p "$work"
data=/usr/share/common-licenses/GPL-3

echo "== generating a byte-level Llama-style model (d=128, 2 layers, 4 heads, vocab 256)"
longctx-models llama --dim 128 --layers 2 --heads 4 --kv-heads 4 --ffn 352 --vocab 256 \
  --seed 1 -o "$work/llama.onnx"

echo "== compiling a training step (batch 4 x 256 tokens, AdamW, lr 3e-3)"
longctx-compile "$work/llama.onnx" --train --shape input_ids=4x256 --optimizer adamw --lr 3e-3 \
  -o "$work/train.lcx"
longctx-dump "$work/train.lcx" --summary

echo "== training 300 steps on $data (byte-level tokens)"
longctx-run "$work/train.lcx" --data "$data" --steps 300 --log-json "$work/train.jsonl"

echo "== inference: compiling for S=512 and checking logits against numpy"
/usr/bin/python3 "$LONGCTX_ROOT/test/e2e/make_tokens.py" "$work/input_ids.npy" 1 512 256
longctx-compile "$work/llama.onnx" --inference --shape input_ids=1x512 -o "$work/llama.lcx"
longctx-run "$work/llama.lcx" --inputs input_ids="$work/input_ids.npy" --outputs "$work/out"
/usr/bin/python3 "$LONGCTX_ROOT/test/e2e/onnx_reference.py" "$work/llama.onnx" \
  --inputs input_ids="$work/input_ids.npy" --outputs "$work/reference" >/dev/null
/usr/bin/python3 "$LONGCTX_ROOT/test/e2e/compare_npy.py" "$work/out/logits.npy" \
  "$work/reference/logits.npy" --rtol 1e-4
echo "longctx demo: OK (artifacts, training log and outputs in $work)"
