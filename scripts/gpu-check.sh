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
for m in llama mamba mamba-parallel mamba-truncated; do
  for d in cpu cuda; do
    timeout 120 "$C/bin/longctx-run" "$C/e2e/$m.lcx" --device $d --inputs input_ids="$C/e2e/ids.npy" \
      --steps 1 --dump-grads "$R/$m-$d" > "$R/$m-$d.txt" 2>&1 || echo "$m on $d failed" | tee -a "$R/e2e.txt"
  done
  python3 test/e2e/compare_grads.py "$R/$m-cuda" "$R/$m-cpu" --rtol 1e-4 2>&1 | tail -1 | sed "s/^/$m: /" | tee -a "$R/e2e.txt"
  grep -h "loss\|device memory" "$R/$m-cpu.txt" "$R/$m-cuda.txt" | tee -a "$R/e2e.txt"
done
# 3. A replayed CUDA graph against eager launches: the same losses.
for g in "" --cuda-graph; do
  timeout 120 "$C/bin/longctx-run" "$C/e2e/llama-adamw.lcx" --device cuda --data "$C/data.txt" \
    --steps 4 $g --log-json "$R/graph$g.jsonl" > "$R/graph$g.txt" 2>&1 || echo "graph$g failed" | tee -a "$R/e2e.txt"
done
python3 -c "import json,sys; a=[json.loads(l)['loss'] for l in open('$R/graph.jsonl')]; b=[json.loads(l)['loss'] for l in open('$R/graph--cuda-graph.jsonl')]; print('graph losses', a, b, 'same' if max(abs(x-y) for x,y in zip(a,b)) < 1e-5 else 'DIFFER')" | tee -a "$R/e2e.txt"
# 4. Step time at 4K, 16K, 64K next to PyTorch eager (when torch imports), and
# the measured device peak against the plan (longctx_peak_over_plan).
timeout 330 python3 bench/step --artifacts "$C/bench" --device cuda --build "$C" --steps 4 --data "$C/data.txt" \
  > "$R/bench_step_cuda.json" 2> "$R/bench_step_cuda.err"
tail -60 "$R/bench_step_cuda.json"
