#!/bin/bash
# Prepares gpu-carry/ (git-ignored, < 64 MiB) for scripts/gpu-check.sh on a
# GPU machine that has the driver, CUDA and PyTorch but no MLIR or Debian
# packages: the runner and the unit tests (stripped; they link no MLIR),
# OpenBLAS (gzipped) for the CPU side of the comparisons, and CUDA artifacts
# compiled here. Then, with the device tool:
#   run(command="bash scripts/gpu-check.sh", carry=["gpu-carry"])
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=gpu-carry
rm -rf "$OUT" && mkdir -p "$OUT/bin" "$OUT/bench" "$OUT/e2e"
cp "$BUILD/bin/longctx-run" "$OUT/bin/"
cp "$BUILD/test/unit/LongctxUnitTests" "$OUT/"
strip -s "$OUT/bin/longctx-run" "$OUT/LongctxUnitTests"
gzip -c /usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0 > "$OUT/libopenblas.so.0.gz"
# Training steps to compare CPU against CUDA (loss and gradients), zoo models.
B="$BUILD/bin"
$B/longctx-models llama --dim 64 --layers 2 --heads 4 --kv-heads 2 --ffn 160 --vocab 256 -o "$OUT/e2e/llama.onnx"
$B/longctx-models mamba --dim 64 --layers 2 --expand 2 --state 16 --vocab 256 -o "$OUT/e2e/mamba.onnx"
/usr/bin/python3 test/e2e/make_tokens.py "$OUT/e2e/ids.npy" 1 512 256
for m in llama mamba; do
  $B/longctx-compile "$OUT/e2e/$m.onnx" --train --optimizer none --device cuda \
    --shape input_ids=1x512 -o "$OUT/e2e/$m.lcx"
done
$B/longctx-compile "$OUT/e2e/mamba.onnx" --train --optimizer none --device cuda \
  --shape input_ids=1x512 --adjoint-shard 8 --adjoint-parallel 2 -o "$OUT/e2e/mamba-parallel.lcx"
$B/longctx-compile "$OUT/e2e/mamba.onnx" --train --optimizer none --device cuda \
  --shape input_ids=1x512 --adjoint-shard 8 --adjoint-truncate 24 -o "$OUT/e2e/mamba-truncated.lcx"
# Three AdamW steps, eager against a replayed CUDA graph.
$B/longctx-compile "$OUT/e2e/llama.onnx" --train --optimizer adamw --device cuda \
  --shape input_ids=1x512 -o "$OUT/e2e/llama-adamw.lcx"
rm "$OUT"/e2e/*.onnx
/usr/bin/python3 bench/step --seq 4096,16384,65536 --device cuda --compile-only "$OUT/bench" > /dev/null
# Training text for bench/step there (that machine may not have Debian's GPL-3): >= 64K + 1 bytes.
for i in 1 2 3; do cat /usr/share/common-licenses/GPL-3; done > "$OUT/data.txt"
du -sh "$OUT"
