#!/bin/sh
# Everything BENCHMARKS.md reports on the CPU training step, in one command, with the BLAS
# kernel a user's machine picks (the forcing variables unset for these runs only):
#   tools/perf_report.sh [PYTHON_WITH_TORCH]     (default: python; PyTorch must be importable)
# 1. the per-op profile of the reference step and its matmul floor (2 threads, then 1 thread),
# 2. minitf against PyTorch eager, 5 alternating rounds, default allocator and keeping freed memory.
# Run it from the repository root on a quiet machine; it takes 10-20 minutes.
set -e
PY=${1:-python}
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}"
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$@"; }
date -u
git log -1 --format='commit %h %s'
run tools/profile_step.py --threads 2
run tools/profile_step.py --threads 1
run tools/bench_step.py --rounds 5
run tools/bench_step.py --rounds 5 --retain-freed-memory
