#!/usr/bin/env bash
# The perf table (benchmarks/run.py table) on a GPU; the current rows are in
# benchmarks/README.md ("On a GPU").
# Usage: benchmarks/perf_gpu.sh [device] [out.json]
# Peak memory on a GPU is torch.cuda.max_memory_allocated() minus the
# allocated bytes before the first step (the worker does this when
# --device is not cpu). Every cell runs in a fresh process, as on CPU.
set -euo pipefail
DEVICE=${1:-cuda:0}
OUT=${2:-benchmarks/results/perf_gpu.json}
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no GPU'; \
print(torch.cuda.get_device_name('$DEVICE'))"
# A GPU has memory for the 64-layer arxiv row without checkpointing
# (~11 GB); 256 layers (~44 GB) runs checkpointed.
$PY benchmarks/run.py table --device "$DEVICE" --graphs cora arxiv \
    --depths 16 64 256 --ckpt-from 256 --adj csr --big-steps 3 \
    --rounds 3 --steps 10 --out "$OUT"
$PY benchmarks/run.py table --report --out "$OUT"
