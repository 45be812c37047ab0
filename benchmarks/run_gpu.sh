#!/usr/bin/env bash
# The benchmarks on a CUDA machine, sized for an H200 session: two parts of about 5 minutes each, so
# that each fits one 10-minute device command.
#
#   benchmarks/run_gpu.sh OUTDIR inference   # optimisations, mome-mini workload, paper workload (~5 min)
#   benchmarks/run_gpu.sh OUTDIR peer        # MoME vs nnU-Net, 3 mm and 1.5 mm pairs, 2 rounds each (~5 min)
#   benchmarks/run_gpu.sh OUTDIR training    # training throughput (~2 min)
#   benchmarks/run_gpu.sh OUTDIR all         # all three, one after another (~12 min)
#
#   inference: optimisations.py (before/after of each optimisation: tiny 64³ K = 5, 20; paper 96³ K = 20);
#              inference.py (512×512×300 CT, fast + full end to end, 3 runs each, cold start, tiny side
#              by side K = 1, 5, 20, 3 passes);
#              inference.py --workload paper (1.5 mm, 96³, all 80 windows side by side, 2 passes,
#              end to end at K = 1, 5, 20 twice each, peak memory of MoME alone at K = 20 by batch size)
#   peer:      peer_nnunet.py (nnU-Net planned at 3 mm and 1.5 mm by its own planner; 2 rounds each)
#   training:  training.py (tiny and paper, 96³ crops, K = 5, 3 warm-up + 15 timed steps, bf16)
#
# Writes OUTDIR/<benchmark>-cuda.json and a log of each. Needs python3 with torch (CUDA) and the
# packages listed in benchmarks/README.md; on a machine without a package index, make the bundle
# here first (benchmarks/gpu_bundle.sh → .whl/) and carry .whl: this script installs it into
# /tmp/site. The source CT is $MOME_BENCH_CT, else $MOME_SHARED_DATA/totalseg_example/example_ct.nii.gz,
# else .whl/data (the bundle holds the CT and the label map the nnU-Net peer plans with), else
# ../shared/data next to the repository. Copy the results you keep to benchmarks/results/.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUTDIR [inference|peer|training|all]" >&2
    exit 2
fi
out=$1
part=${2:-all}
mkdir -p "$out"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1

if [ -d "$repo/.whl" ] && ! "$python" -c "import SimpleITK, monai, nnunetv2" 2>/dev/null; then
    echo "installing the carried packages (.whl) into /tmp/site" >&2
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$repo"/.whl/*.whl
    tar xJf "$repo/.whl/simpleitk.tar.xz" -C /tmp/site
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -z "${MOME_SHARED_DATA:-}" ] && [ -d "$repo/.whl/data" ]; then
    export MOME_SHARED_DATA=$repo/.whl/data  # the data gpu_bundle.sh put beside the packages
fi
extra=()
if [ -n "${MOME_BENCH_CT:-}" ]; then
    extra+=(--ct "$MOME_BENCH_CT")
fi

run() {  # name, then the command; its output goes to OUTDIR/name.log as well
    local name=$1
    shift
    local start
    start=$(date +%s)
    "$@" 2>&1 | tee "$out/$name.log"
    echo "$name: $(($(date +%s) - start)) s" >&2
}

if [ "$part" = inference ] || [ "$part" = all ]; then
    run optimisations "$python" "$here/optimisations.py" --device cuda --repeats 10 --paper-repeats 10 \
        --out "$out/optimisations-cuda.json"
    model=()
    if [ -n "${MOME_BENCH_MODEL:-}" ]; then  # a model package other than the default one
        model=(--model "$MOME_BENCH_MODEL")
    fi
    run inference "$python" "$here/inference.py" --device cuda --repeats 3 --size tiny ${extra[@]+"${extra[@]}"} \
        ${model[@]+"${model[@]}"} --out "$out/inference-cuda.json"
    run inference-paper "$python" "$here/inference.py" --device cuda --workload paper --repeats 2 --passes 2 \
        ${extra[@]+"${extra[@]}"} --out "$out/inference-paper-cuda.json"
fi
if [ "$part" = peer ] || [ "$part" = all ]; then
    run peer_nnunet "$python" "$here/peer_nnunet.py" --device cuda --rounds 2 --rounds-paper 2 \
        ${extra[@]+"${extra[@]}"} --out "$out/peer_nnunet-cuda.json"
fi
if [ "$part" = training ] || [ "$part" = all ]; then
    run training "$python" "$here/training.py" --device cuda --steps 15 --warmup 3 --out "$out/training-cuda.json"
fi
