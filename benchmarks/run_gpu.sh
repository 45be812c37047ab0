#!/usr/bin/env bash
# Run both benchmarks on a CUDA machine with the settings sized for about two minutes on an H200:
#   inference: 512×512×300 CT, fast + full end to end (3 runs each), tiny and paper side by side,
#              K = 1, 5, 20, 3 passes;
#   training:  tiny and paper, 96³ crops, K = 5, 3 warm-up + 15 timed steps per network, bf16 AMP.
#
#   benchmarks/run_gpu.sh OUTDIR
#
# Writes OUTDIR/inference-cuda.json, OUTDIR/training-cuda.json and a log of each. Needs only
# python3 with torch (CUDA), numpy, scipy, safetensors, einops, pyyaml, tqdm, monai, SimpleITK and
# pynrrd; run it from anywhere. The source CT is $MOME_BENCH_CT, else
# $MOME_SHARED_DATA/totalseg_example/example_ct.nii.gz, else ../shared/data next to the repository;
# the model is $MOME_BENCH_MODEL (a package folder or .zip), else the default model.
# Copy the results you keep to benchmarks/results/ (inference-cuda.json, training-cuda.json).
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
mkdir -p "$out"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
extra=()
if [ -n "${MOME_BENCH_CT:-}" ]; then
    extra+=(--ct "$MOME_BENCH_CT")
fi
if [ -n "${MOME_BENCH_MODEL:-}" ]; then  # a model package other than the default one
    extra+=(--model "$MOME_BENCH_MODEL")
fi

start=$(date +%s)
"$python" "$here/inference.py" --device cuda --repeats 3 ${extra[@]+"${extra[@]}"} \
    --out "$out/inference-cuda.json" 2>&1 | tee "$out/inference-cuda.log"
middle=$(date +%s)
echo "inference benchmark: $((middle - start)) s" >&2
"$python" "$here/training.py" --device cuda --steps 15 --warmup 3 \
    --out "$out/training-cuda.json" 2>&1 | tee "$out/training-cuda.log"
end=$(date +%s)
echo "training benchmark: $((end - middle)) s; both: $((end - start)) s" >&2
