#!/bin/bash
# The GPU checks of issue 8, run on the device machine from gpu-carry/ (see
# scripts/prepare-gpu-check.sh). Writes what it measures to $OUT (or out/).
set -uo pipefail
cd "$(dirname "$0")/.."
C=gpu-carry
R=${OUT:-out}
mkdir -p "$R"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$R/gpu.txt"
gunzip -c "$C/libopenblas.so.0.gz" > /tmp/libopenblas.so.0
export LONGCTX_BLAS=/tmp/libopenblas.so.0
# 1. Every CUDA kernel against its CPU twin; the executor against the CPU's.
timeout 300 "$C/LongctxUnitTests" --gtest_filter='CudaKernels*:CudaDevice*:CudaExecutor*' \
  2>&1 | tee "$R/unit.txt" | tail -25
# 2. Training steps: loss and gradients on CUDA against the CPU (1e-4).
for m in llama mamba mamba-parallel; do
  for d in cpu cuda; do
    timeout 120 "$C/bin/longctx-run" "$C/e2e/$m.lcx" --device $d --inputs input_ids="$C/e2e/ids.npy" \
      --steps 1 --dump-grads "$R/$m-$d" > "$R/$m-$d.txt" 2>&1 || echo "$m on $d failed" | tee -a "$R/e2e.txt"
  done
  python3 test/e2e/compare_grads.py "$R/$m-cuda" "$R/$m-cpu" --rtol 1e-4 2>&1 | tail -1 | sed "s/^/$m: /" | tee -a "$R/e2e.txt"
  grep -h "loss\|device memory" "$R/$m-cpu.txt" "$R/$m-cuda.txt" | tee -a "$R/e2e.txt"
done
# 3. Step time at 4K, 16K, 64K next to PyTorch eager (when torch imports).
timeout 400 python3 bench/step --artifacts "$C/bench" --device cuda --build "$C" --steps 4 --data "$C/data.txt" \
  > "$R/bench_step_cuda.json" 2> "$R/bench_step_cuda.err"
tail -40 "$R/bench_step_cuda.json"
