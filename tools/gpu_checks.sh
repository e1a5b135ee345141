#!/usr/bin/env bash
# Everything that needs a GPU, in one run: the device-aware test suite on CuPy, then the
# training-step benchmark against PyTorch on the reference and GPU configurations, with
# and without TF32. Results go to files under OUT_DIR (default gpu-results/).
#
#   tools/gpu_checks.sh [OUT_DIR] [PEAK_TFLOPS]
#
# PEAK_TFLOPS: the device's peak float32 matmul rate (without TF32), for the fraction of peak
# that bench_step reports; the TF32 runs get no fraction unless you pass their peak by hand.
set -u
out=${1:-gpu-results}
peak=${2:-}
mkdir -p "$out"
cd "$(dirname "$0")/.."

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python -c "import cupy, numpy, sys; print(sys.version); print('cupy', cupy.__version__, 'numpy', numpy.__version__)" \
    > "$out/versions.txt" 2>&1
python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" >> "$out/versions.txt" 2>&1

MINITF_TEST_DEVICE=cuda python -m pytest -q -p no:cacheprovider > "$out/tests-cuda.txt" 2>&1
echo "tests on cuda: exit $? ($(tail -n 1 "$out/tests-cuda.txt"))"

for config in ref gpu; do
    for tf32 in "" "--tf32"; do
        name="bench-$config${tf32:+-tf32}"
        extra=()
        if [ -n "$peak" ] && [ -z "$tf32" ]; then extra=(--peak-tflops "$peak"); fi
        python tools/bench_step.py --device cuda --config "$config" $tf32 "${extra[@]}" > "$out/$name.txt" 2>&1
        echo "$name: exit $?"
    done
done
