#!/usr/bin/env bash
# Makes .whl/ in the repository root (git-ignored): the Python packages the benchmarks need that the
# GPU machine's image lacks (it has torch, numpy, scipy, pandas, scikit-image, … but no way to reach
# a package index), for Python 3.12 on x86-64 Linux. Run it here, where pip reaches PyPI; the GPU
# session then carries .whl (`carry: [".whl"]`) and benchmarks/run_gpu.sh installs it.
#
#   benchmarks/gpu_bundle.sh            # about 10 minutes on 2 cores (most of it compressing SimpleITK)
#
# The working tree that travels may hold 64 MiB. SimpleITK's wheel alone is 53 MB, so it travels as
# its unpacked files in an xz archive (28 MB); the rest as wheels. Pure-Python packages published
# only as source (nnU-Net's helpers) are built into wheels here. With the benchmark data, about 48 MB.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo/.whl
python=${PYTHON:-python3}
mkdir -p "$out"
cd "$out"

platform=(--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
          --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
          --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
# The engine's packages missing there, then nnU-Net v2 and those of its needs missing there.
binary=(monai==1.6.1 pynrrd==1.1.3 slicerio==1.4.0 nibabel==5.4.2 blosc2==4.14.1 ndindex==1.10.1
        numexpr==2.14.2 connected-components-3d==4.1.1 nnunetv2==2.8.1)
source_only=(dynamic-network-architectures==0.4.4 acvl-utils==0.2.6 batchgenerators==0.25.5
             batchgeneratorsv2==0.3.6)

"$python" -m pip download -q --no-deps --only-binary=:all: "${platform[@]}" -d . "${binary[@]}"
"$python" -m pip wheel -q --no-deps -w . "${source_only[@]}"

if [ ! -f simpleitk.tar.xz ]; then
    tmp=$(mktemp -d)
    "$python" -m pip download -q --no-deps --only-binary=:all: "${platform[@]}" -d "$tmp" SimpleITK==2.5.3
    (cd "$tmp" && mkdir files && cd files && "$python" -m zipfile -e ../simpleitk-*.whl . && tar cf - . | xz -9 -T0 > "$out/simpleitk.tar.xz")
    rm -rf "$tmp"
fi
# The benchmarks' data (the shared abdomen CT and TotalSegmentator's label map of it, Apache-2.0):
# ../shared/data does not travel to the GPU machine; run_gpu.sh reads it from .whl/data.
data=${MOME_SHARED_DATA:-$repo/../shared/data}/totalseg_example
mkdir -p "$out/data/totalseg_example"
cp "$data"/{example_ct.nii.gz,example_seg_fast_force_split.nii.gz,LICENSE_TotalSegmentator_Apache-2.0.txt} \
    "$out/data/totalseg_example/"
touch "$out/data/README.md"  # marks the folder as shared data for the tests' and benchmarks' look-up
du -sh "$out"
