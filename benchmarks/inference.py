#!/usr/bin/env python3
"""Inference benchmark: end-to-end segmentation time and peak memory, and the network's cost side by
side with its bare backbone and the Universal Model baseline. Writes one JSON file per run.

    python benchmarks/inference.py --device cpu                 # CPU, default settings
    python benchmarks/inference.py --device cuda --repeats 3    # GPU: tiny and paper side by side
    python benchmarks/inference.py --workload paper --device cuda   # the paper's scale: 1.5 mm, 96³
    python benchmarks/inference.py --quick                      # smoke test: small CT, 1 repeat

What it measures (see benchmarks/README.md):

1. **The CT.** The real abdominal sample ``totalseg_example/example_ct.nii.gz`` (122×101×112 at
   3 mm) is resampled (linear) to a typical clinical grid of 512×512×300 over the same field of
   view and saved as a temporary NIfTI; the JSON records that it was built this way.
2. **End to end**, ``--fast`` and full mode, default model, K = 5 prompts: read the CT → load the
   model → ``Segmenter.segment`` → write a ``.seg.nrrd`` with ``mome.io``. Each run is a fresh
   process, so its peak RSS (VmHWM; see _common.peak_rss_bytes) and, on CUDA, ``torch.cuda.max_memory_allocated``
   belong to that configuration alone.
3. **Side by side**, on the same sliding-window workload (the CT preprocessed at the model's spacing,
   the model's patch, overlap 0.5): the bare Swin UNETR backbone (decoder stages only), the
   ``universal`` variant and MoME, same size, K = 1, 5, 20 prompts (random weights and embeddings:
   speed does not depend on their values). Variants are timed in rotating order within each repeat,
   so that load changes on a shared machine hit all of them alike; ratios are of medians.
4. **Cold start** (``mini`` workload): the real ``mome segment --progress json`` in a fresh process,
   timestamping its first output, the start of inference and the first finished window.

``--workload paper`` does 2 and 3 at the paper's scale instead: a random-weight paper-size package
(feature size 48, 1.5 mm, 96³ windows), K = 1, 5, 20, and on CUDA the peak GPU memory of MoME alone
at K = 20 for 1, 2, 4 and 8 windows per batch.

Every process applies the settings ``mome segment`` applies to itself (``mome.runtime``: allocator,
OpenMP wait policy, MONAI without optional packages), so the times are the CLI's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402  (also puts the repository on sys.path)

NAME = "inference"
FULL_CT_SIZE = (512, 512, 300)  # (x, y, z) voxels
QUICK_CT_SIZE = (128, 128, 64)
QUICK_FOV_FRACTION = 0.5  # the quick CT covers the central half of the field of view along each axis
# Structures the bundled mome-mini segments (`mome segment` refuses not-learned ones such as spleen and the
# kidneys); the time does not depend on which five are asked for.
PROMPTS_K5 = "liver, stomach, colon, aorta, inferior vena cava"
PROMPTS_K1 = "liver"
TEXT_DIM = 384
PAPER_CLASSES = 20  # the paper package knows the first 20 vocabulary structures, so K = 20 needs no text encoder
PAPER_CPU_MAX_WINDOWS = 4  # 96³ windows of a paper-size network take ~20 s each on 2 CPU cores
VARIANTS = ("backbone", "universal", "mome")

TARGETS = {
    "cpu_fast_end_to_end_s": 60.0,
    "cpu_full_end_to_end_s": 300.0,
    "peak_ram_bytes": 4 * 1024**3,
    "gpu_full_end_to_end_s": 10.0,
    "mome_over_backbone_at_k5": 1.15,
    "cold_start_first_window_s": 3.0,
    # the paper's scale (issue 13); GPU targets, CPU numbers are their analogue
    "paper_mome_over_backbone_at_k5": 1.10,
    "paper_mome_over_backbone_at_k20": 1.5,
    "paper_gpu_peak_bytes_at_k20": 8 * 10**9,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--workload", choices=("mini", "paper"), default="mini",
                   help="mini: the default model (mome-mini, 3 mm, 64³); paper: a random paper-size package "
                        "(feature size 48, 1.5 mm, 96³)")
    p.add_argument("--max-windows", type=int, default=None,
                   help="side by side: crop the prepared CT around its centre to at most this many windows "
                        f"(default: all; {PAPER_CPU_MAX_WINDOWS} for the paper workload on the CPU)")
    p.add_argument("--e2e-prompts", type=int, nargs="+", default=None, metavar="K",
                   help="paper workload: prompt counts run end to end (default 1 5 20 on CUDA, 20 on the CPU)")
    p.add_argument("--skip-cold-start", action="store_true", help="no cold-start measurement")
    p.add_argument("--size", action="append", choices=("tiny", "small", "paper"),
                   help="network size for the side-by-side comparison; repeatable "
                        "(default: tiny on CPU, tiny and paper on CUDA)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per measurement; medians are reported (default 3)")
    p.add_argument("--passes", type=int, default=None,
                   help="passes over the workload in the side-by-side comparison (default: 1 on CPU, where "
                        "the per-window pairing already gives a robust ratio, else --repeats)")
    p.add_argument("--prompts", type=int, nargs="+", default=[1, 5, 20], metavar="K",
                   help="prompt counts for the side-by-side comparison (default 1 5 20)")
    p.add_argument("--quick", action="store_true", help="smoke test: a small CT and 1 repeat")
    p.add_argument("--ct", type=Path, default=None,
                   help="source CT (default: $MOME_SHARED_DATA or ../shared/data, totalseg_example/example_ct.nii.gz)")
    p.add_argument("--model", default=None, help="model package (default: mome.hub.resolve_model(None))")
    p.add_argument("--skip-end-to-end", action="store_true", help="only the side-by-side comparison")
    p.add_argument("--skip-side-by-side", action="store_true", help="only the end-to-end runs")
    p.add_argument("--block-optional-imports", action="store_true",
                   help="make DICOM/text-encoder/Slicer/Pillow imports fail, to prove they are not needed")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default: benchmarks/results/inference-<device>[-quick].json)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.passes is None:
        args.passes = 1 if args.device == "cpu" else args.repeats
    if args.repeats < 1 or args.passes < 1:
        p.error("--repeats and --passes must be at least 1")
    if args.workload == "paper":
        if args.size and args.size != ["paper"]:
            p.error("--workload paper runs the paper size only")
        args.size = ["paper"]
        if args.max_windows is None and args.device == "cpu":
            args.max_windows = 1 if args.quick else PAPER_CPU_MAX_WINDOWS
        if args.e2e_prompts is None:
            args.e2e_prompts = [20] if args.device == "cpu" or args.quick else [1, 5, 20]
        if any(not 1 <= k <= PAPER_CLASSES for k in args.e2e_prompts + args.prompts):
            p.error(f"the paper workload's package knows {PAPER_CLASSES} classes: K must be 1-{PAPER_CLASSES}")
    if not args.size:
        args.size = ["tiny"] if (args.quick or args.device == "cpu") else ["tiny", "paper"]
    args.size = list(dict.fromkeys(args.size))
    return args


# ---------------------------------------------------------------------------- the CT
def build_ct(source: Path, size: tuple[int, int, int], fov_fraction: float, path: Path) -> dict[str, Any]:
    """Resample ``source`` (linear) onto a ``size`` grid over the central ``fov_fraction`` of its
    field of view, same orientation, int16; save it to ``path`` (gzip level 1)."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(source))
    old_size = np.asarray(image.GetSize(), dtype=float)
    old_spacing = np.asarray(image.GetSpacing(), dtype=float)
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    extent = old_size * old_spacing * fov_fraction  # mm, voxel edge to edge
    new_size = np.asarray(size, dtype=float)
    new_spacing = extent / new_size
    # Same centre: the centre of the old field of view in index space is (size - 1) / 2.
    centre = np.asarray(image.GetOrigin()) + direction @ ((old_size - 1) / 2 * old_spacing)
    origin = centre - direction @ ((new_size - 1) / 2 * new_spacing)
    resampled = sitk.Resample(image, [int(s) for s in size], sitk.Transform(), sitk.sitkLinear,
                              origin.tolist(), new_spacing.tolist(), image.GetDirection(), -1024.0, sitk.sitkInt16)
    sitk.WriteImage(resampled, str(path), True, 1)
    return {
        "built_from": str(source),
        "how": (f"linear resampling of the source CT onto {size[0]}×{size[1]}×{size[2]} voxels over "
                f"{'the whole' if fov_fraction == 1 else f'the central {fov_fraction:g} (per axis) of the'} field "
                "of view, same orientation, int16, saved as gzip NIfTI"),
        "source_size": [int(s) for s in old_size],
        "source_spacing_mm": [round(float(s), 4) for s in old_spacing],
        "size": list(size),
        "spacing_mm": [round(float(s), 4) for s in new_spacing],
        "voxels": int(np.prod(size)),
        "file_bytes": path.stat().st_size,
    }


# ---------------------------------------------------------------------------- end to end (child)
def cli_process_settings() -> dict[str, Any]:
    """What ``mome segment`` does to its own process (``mome.runtime``), before torch is imported."""
    import os

    from mome.runtime import prefer_passive_waiting, tune_allocator

    passive = prefer_passive_waiting()
    return {"allocator_tuned": tune_allocator(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "omp_wait_policy_set_here": passive}


def end_to_end_child(job: dict[str, Any]) -> dict[str, Any]:
    """``job["repeats"]`` end-to-end segmentations of one configuration in this (fresh) process;
    timings of each, and the process's peak memory over all of them."""
    settings = cli_process_settings()
    clock = time.perf_counter()
    import torch

    from mome.runtime import import_monai_lean

    settings["monai_imported_lean"] = import_monai_lean()
    from mome.inference import Segmenter
    from mome.io.reading import read_ct
    from mome.io.seg_nrrd import write_seg_nrrd
    from mome.package import ModelPackage
    from mome.vocabulary import load_vocabulary, parse_prompts

    setup: dict[str, float] = {"imports": time.perf_counter() - clock}
    device = torch.device(job["device"])
    if device.type == "cuda":
        clock = time.perf_counter()
        torch.zeros(1, device=device)
        torch.cuda.synchronize()
        setup["cuda_init"] = time.perf_counter() - clock  # context creation: not part of end_to_end
    classes = parse_prompts(job["prompts"], load_vocabulary()).classes

    runs = []
    for repeat in range(job["repeats"]):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        loaded = read_ct(job["ct"])
        timings["read_ct"] = time.perf_counter() - start

        clock = time.perf_counter()
        package = ModelPackage.load(job["model"])
        segmenter = Segmenter(package, device=device, fast=job["fast"])
        common.synchronize(device)
        timings["load_model"] = time.perf_counter() - clock

        clock = time.perf_counter()
        result = segmenter.segment(loaded.image, classes)
        common.synchronize(device)
        timings["segment"] = time.perf_counter() - clock

        clock = time.perf_counter()
        output = Path(job["output"])
        algorithm = f"MoME {package.info.name} {package.info.version}"
        write_seg_nrrd(output, result.masks, loaded.image, result.descriptors, algorithm)
        timings["write_seg_nrrd"] = time.perf_counter() - clock
        timings["end_to_end"] = time.perf_counter() - start
        runs.append({
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "segment_stages_s": result.timings,
            "device_used": result.device_used,
            "warnings": result.warnings,
        })
        common.log(f"  {job['name']} run {repeat + 1}/{job['repeats']}: {timings['end_to_end']:.2f} s")
        masks = [int(m.sum()) for m in result.masks]
        keys = [c.key for c in result.classes]
        output_bytes = output.stat().st_size
        output.unlink()
        del loaded, package, segmenter, result

    out: dict[str, Any] = {
        "process_settings": settings,
        "setup_s": {k: round(v, 3) for k, v in setup.items()},
        "runs": runs,
        "classes": keys,
        "mask_voxels": masks,
        "output_bytes": output_bytes,
        "peak_rss_bytes": common.peak_rss_bytes(),
        "third_party_imports": common.imported_third_party(),
        "unexpected_imports": common.unexpected_third_party(),
    }
    if device.type == "cuda":
        out["cuda_max_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated())
        out["cuda_max_memory_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
    return out


def end_to_end_job(name: str, ct_path: Path, model_path: Path, device: str, fast: bool, prompts: str,
                   repeats: int, workdir: Path) -> dict[str, Any]:
    return {"kind": "end_to_end", "name": name, "ct": str(ct_path), "model": str(model_path), "device": device,
            "fast": fast, "prompts": prompts, "repeats": repeats, "output": str(workdir / f"{name}.seg.nrrd")}


def collect_end_to_end(result: dict[str, Any]) -> dict[str, Any]:
    """Medians over one end-to-end child's repeats, and what the process recorded."""
    runs = result["runs"]
    keys = runs[0]["timings_s"].keys()
    out: dict[str, Any] = {
        "end_to_end_s": common.summary([r["timings_s"]["end_to_end"] for r in runs], 3),
        "first_run_s": runs[0]["timings_s"]["end_to_end"],
        "stages_median_s": {k: round(common.median([r["timings_s"][k] for r in runs]), 3) for k in keys},
        "segment_stages_median_s": {
            k: round(common.median([r["segment_stages_s"][k] for r in runs]), 3) for k in runs[0]["segment_stages_s"]
        },
        "process_settings": result["process_settings"],
        "process_setup_s": result["setup_s"],
        "process_wall_s": result["process_wall_s"],
        "peak_rss_bytes": result["peak_rss_bytes"],
        "device_used": sorted({r["device_used"] for r in runs}),
        "classes": result["classes"],
        "mask_voxels": result["mask_voxels"],
        "output_bytes": result["output_bytes"],
        "warnings": sorted({w for r in runs for w in r["warnings"]}),
        "unexpected_imports": result["unexpected_imports"],
    }
    for key in ("cuda_max_memory_allocated_bytes", "cuda_max_memory_reserved_bytes"):
        if key in result:
            out[key] = result[key]
    return out


def paper_prompts(k: int) -> str:
    """K prompts the paper package knows: liver (K = 1), the usual five (K = 5), else the first K of its classes."""
    if k == 1:
        return PROMPTS_K1
    if k == 5:
        return PROMPTS_K5
    from mome.vocabulary import load_vocabulary

    vocabulary = load_vocabulary()
    return ", ".join(s.name for s in list(vocabulary)[:k])


def run_end_to_end(args: argparse.Namespace, ct_path: Path, model_path: Path, workdir: Path) -> dict[str, Any]:
    script = Path(__file__).resolve()
    if args.workload == "paper":  # full mode (1.5 mm) per prompt count
        configs = [(f"k{k}", False, paper_prompts(k)) for k in args.e2e_prompts]
    else:
        configs = [("fast", True, PROMPTS_K5), ("full", False, PROMPTS_K5)]
    results: dict[str, dict[str, Any]] = {}
    for name, fast, prompts in configs:
        common.log(f"end to end: {name}, {args.repeats} run(s) in a fresh process")
        job = end_to_end_job(f"e2e-{name}", ct_path, model_path, args.device, fast, prompts, args.repeats, workdir)
        results[name] = common.run_child(script, job)
        common.log(f"  peak RSS {results[name]['peak_rss_bytes'] / 2**20:.0f} MiB")
    first = next(iter(results.values()))
    return {
        "what": "read CT → load model → Segmenter.segment → write .seg.nrrd (mome.io). One fresh process per "
                "configuration (so that they do not share memory peaks) running the repeats one after another; "
                "end_to_end_s excludes interpreter start, imports and CUDA context creation (process_setup_s), "
                "first_run_s is the cold first run of the process",
        "peak_rss_measured": common.PEAK_RSS_SOURCE,
        "prompts": {name: prompts for name, _, prompts in configs},
        "k": {name: len(prompts.split(",")) for name, _, prompts in configs},
        "third_party_imports": first["third_party_imports"],
        **{name: collect_end_to_end(result) for name, result in results.items()},
    }


# ---------------------------------------------------------------------------- cold start
def run_cold_start(args: argparse.Namespace, ct_path: Path, model_path: Path, workdir: Path) -> dict[str, Any]:
    """``mome segment --fast --progress json`` as the Slicer modules start it (a fresh process per
    click), timestamped from process start; stopped with SIGTERM (the modules' Cancel) after the
    first finished window, since only the start-up is measured here."""
    import signal
    import subprocess

    output = workdir / "cold-start.seg.nrrd"
    command = [sys.executable, "-m", "mome.cli.main", "segment", str(ct_path), "--prompts", PROMPTS_K5,
               "--output", str(output), "--fast", "--device", args.device, "--progress", "json", "--overwrite",
               "--model", str(model_path)]
    runs = []
    for repeat in range(args.repeats):
        marks: dict[str, float] = {}
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   cwd=common.REPO)
        assert process.stdout is not None
        for line in process.stdout:
            now = time.perf_counter() - start
            try:
                event = json.loads(line)
            except ValueError:
                continue
            marks.setdefault("first_event", now)
            if event.get("stage") == "load" and "model" in event.get("message", ""):
                marks.setdefault("model_loading", now)
            if event.get("stage") == "inference":
                marks.setdefault("inference_start", now)
            if event.get("window"):
                marks["first_window"] = now
                marks["windows"] = event.get("windows")
                process.send_signal(signal.SIGTERM)
                break
        process.communicate(timeout=120)
        if "first_window" not in marks:
            raise RuntimeError(f"mome segment ended (exit code {process.returncode}) before its first window")
        runs.append({k: round(v, 3) for k, v in marks.items()})
        common.log(f"cold start {repeat + 1}/{args.repeats}: first window after {marks['first_window']:.2f} s "
                   f"(first event {marks['first_event']:.2f} s, inference from {marks['inference_start']:.2f} s)")
    return {
        "what": "process start (Popen) → each mark, as read from the JSON progress lines of `mome segment --fast "
                "--progress json` with the K = 5 prompts on the benchmark CT; first_window is the first finished "
                "window (a batch of windows), after which the process is stopped with SIGTERM",
        "command": " ".join(command[1:]),
        "runs": runs,
        "median_s": {k: round(common.median([r[k] for r in runs]), 3)
                     for k in ("first_event", "model_loading", "inference_start", "first_window")},
    }


# ---------------------------------------------------------------------------- side by side
def build_variant(variant: str, size: str):
    import torch
    from torch import nn

    from mome.model import MoME, MoMEConfig
    from mome.model.backbone import MoMESwinUNETR

    torch.manual_seed(0)
    if variant != "backbone":
        return MoME(MoMEConfig.from_size(size, variant=variant, text_dim=TEXT_DIM))

    class BareBackbone(nn.Module):
        """The Swin UNETR alone: decoder stages, no experts, router or class heads. Its last stage's
        first channel is handed to the sliding window K times, so that stitching costs the same as
        for the real networks (K output channels) and the difference is the class computation."""

        def __init__(self, feature_size: int):
            super().__init__()
            self.backbone = MoMESwinUNETR(1, feature_size)

        def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
            out = self.backbone(image)[-1]
            return out[:, :1].expand(-1, text.shape[-2], *out.shape[2:])

    return BareBackbone(MoMEConfig.from_size(size).feature_size)


class Interleaved:
    """A stand-in "network" for the engine's sliding window that runs every variant on each batch of
    windows, in rotating order, timing each one (device-synchronised), and hands MoME's logits on.

    So the variants see exactly the same windows, batches and machine state, and a load change on a
    shared machine hits all of them alike; the stitching is done once per pass (reported as overhead).
    """

    def __init__(self, models: dict[str, Any], device):
        self.models = models
        self.device = device
        self.times: dict[str, list[float]] = {v: [] for v in models}

    def __call__(self, windows, text):
        step = len(self.times[VARIANTS[0]])
        order = VARIANTS[step % len(VARIANTS):] + VARIANTS[:step % len(VARIANTS)]
        out = None
        for variant in order:
            seconds, logits = common.timed(lambda: self.models[variant](windows, text), self.device)
            self.times[variant].append(seconds)
            if variant == "mome":
                out = logits
        return out


def central_crop(image, patch: tuple[int, ...], overlap: float, max_windows: int):
    """The centred crop of ``image`` (1×1×X×Y×Z) with at most ``max_windows`` sliding windows: the
    axis with the most window positions loses one step at a time (never below one patch)."""
    from mome.inference.sliding import window_count

    size = [int(s) for s in image.shape[2:]]
    step = [max(1, int(p * (1 - overlap))) for p in patch]
    while window_count(size, patch, overlap) > max_windows:
        positions = [1 + max(0, -(-(s - p) // t)) for s, p, t in zip(size, patch, step)]
        axis = max(range(3), key=lambda a: (positions[a], size[a]))
        if size[axis] <= patch[axis]:
            break
        size[axis] = max(patch[axis], size[axis] - step[axis])
    start = [(s - c) // 2 for s, c in zip(image.shape[2:], size)]
    return image[:, :, start[0]:start[0] + size[0], start[1]:start[1] + size[1], start[2]:start[2] + size[2]]


def run_side_by_side(args: argparse.Namespace, ct_path: Path, package) -> dict[str, Any]:
    import torch

    from mome.inference import prepare_image
    from mome.inference.device import autocast_for
    from mome.inference.sliding import (
        choose_sw_batch_size,
        sliding_window_probabilities,
        window_count,
    )
    from mome.io.reading import read_ct
    from mome.model import MoMEConfig

    device = common.resolve_device(args.device)
    pre = package.preprocessing
    patch = tuple(int(p) for p in pre.patch_size)
    prepared = prepare_image(read_ct(ct_path).image, pre, fast=False)
    image = prepared.tensor
    overlap = 0.5
    windows_all = window_count(image.shape[2:], patch, overlap)
    if args.max_windows is not None and windows_all > args.max_windows:
        image = central_crop(image, patch, overlap, args.max_windows)
    windows = window_count(image.shape[2:], patch, overlap)
    workload = {
        "what": "the benchmark CT preprocessed as in full mode (orientation, spacing, HU window, body crop), run "
                "through the engine's sliding_window_probabilities (MONAI, Gaussian blending, stitched on the CPU "
                "in float16, bf16 autocast on CUDA). In each pass every batch of windows goes through all three "
                "variants in rotating order, each timed alone (device-synchronised); seconds = a variant's summed "
                "network time over the pass, median over passes. stitching_overhead_s = pass wall time minus all "
                "network time (the same for every variant). paired ratio = median over window batches of the "
                "per-batch time ratio (robust to load changes on a shared machine).",
        "tensor_shape": list(image.shape),
        "prepared_tensor_shape": list(prepared.tensor.shape),
        "spacing_mm": list(pre.spacing),
        "patch_size": list(patch),
        "overlap": overlap,
        "windows": windows,
        "windows_of_the_whole_ct": windows_all,
        "cut": None if windows == windows_all else (
            f"only the central {'×'.join(map(str, image.shape[2:]))} voxels of the prepared CT "
            f"({'×'.join(map(str, prepared.tensor.shape[2:]))}): {windows} of its {windows_all} windows, "
            "to fit the run on the CPU; per-window costs and ratios are unaffected"),
        "passes": args.passes,
        "embeddings": f"random K×{TEXT_DIM} (as for K classes of a random package; speed does not depend on values)",
        "weights": "random (seed 0)",
        "backbone": "MoMESwinUNETR returning its decoder stages; its last stage's first channel is handed on K "
                    "times so that the stitched output has K channels as for the networks",
    }
    sizes: dict[str, Any] = {}
    for size in args.size:
        feature_size = MoMEConfig.from_size(size).feature_size
        models = {v: build_variant(v, size).to(device).eval() for v in VARIANTS}
        params = {v: sum(p.numel() for p in m.parameters()) for v, m in models.items()}
        per_k: dict[str, Any] = {}
        for k in args.prompts:
            generator = torch.Generator().manual_seed(k)
            text = torch.randn(k, TEXT_DIM, generator=generator)
            sw = choose_sw_batch_size(device, patch, feature_size, k)
            # Warm-up: one batch of windows per variant (cuDNN/kernel selection, allocator, caches).
            with torch.inference_mode(), autocast_for(device):
                warm = torch.rand(sw, 1, *patch, device=device)
                for model in models.values():
                    model(warm, text.to(device))
            common.synchronize(device)
            del warm
            totals: dict[str, list[float]] = {v: [] for v in VARIANTS}
            overhead: list[float] = []
            paired: dict[str, list[float]] = {"mome": [], "universal": []}
            peak = None
            for repeat in range(args.passes):
                runner = Interleaved(models, device)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                wall, _ = common.timed(lambda: sliding_window_probabilities(
                    runner, image, text, patch, overlap, device, sw), device)
                if device.type == "cuda":
                    peak = max(peak or 0, int(torch.cuda.max_memory_allocated()))
                for v in VARIANTS:
                    totals[v].append(sum(runner.times[v]))
                overhead.append(wall - sum(sum(t) for t in runner.times.values()))
                for v in paired:
                    paired[v] += [a / b for a, b in zip(runner.times[v], runner.times["backbone"])]
                common.log(f"side by side {size} K={k} pass {repeat + 1}/{args.passes} ({len(runner.times['mome'])} "
                           "batches): " + ", ".join(f"{v} {totals[v][-1]:.2f} s" for v in VARIANTS)
                           + f", stitching {overhead[-1]:.2f} s")
            medians = {v: common.median(totals[v]) for v in VARIANTS}
            stitch = common.median(overhead)
            entry: dict[str, Any] = {
                "sw_batch_size": sw,
                "batches_per_pass": len(paired["mome"]) // args.passes,
                "seconds": {v: common.summary(totals[v]) for v in VARIANTS},
                "stitching_overhead_s": common.summary(overhead),
                "mome_over_backbone": common.ratio(medians["mome"], medians["backbone"]),
                "universal_over_backbone": common.ratio(medians["universal"], medians["backbone"]),
                "mome_over_universal": common.ratio(medians["mome"], medians["universal"]),
                "mome_over_backbone_paired": round(common.median(paired["mome"]), 3),
                "universal_over_backbone_paired": round(common.median(paired["universal"]), 3),
                "mome_over_backbone_with_stitching": common.ratio(medians["mome"] + stitch, medians["backbone"] + stitch),
                "universal_over_backbone_with_stitching": common.ratio(medians["universal"] + stitch,
                                                                       medians["backbone"] + stitch),
            }
            if peak is not None:
                entry["cuda_max_memory_allocated_bytes_all_three"] = peak
            per_k[str(k)] = entry
        sizes[size] = {"feature_size": feature_size, "parameters": params, "k": per_k}
        if device.type == "cuda" and args.workload == "paper":
            for variant in ("backbone", "universal"):
                models[variant].cpu()
            sizes[size]["mome_alone_gpu_memory_k20"] = gpu_memory_by_batch(models["mome"], image, patch, overlap,
                                                                           device, feature_size)
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"workload": workload, "sizes": sizes}


def gpu_memory_by_batch(model, image, patch, overlap: float, device, feature_size: int) -> dict[str, Any]:
    """Peak GPU memory of MoME alone (weights included) over one sliding-window pass at K = 20, for
    1, 2, 4 and 8 windows per batch; and the batch the engine would choose with 8 GB free."""
    import torch

    from mome.inference.sliding import estimated_window_bytes, sliding_window_probabilities

    text = torch.randn(20, TEXT_DIM, generator=torch.Generator().manual_seed(20))
    peaks: dict[str, Any] = {}
    for batch in (1, 2, 4, 8):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        try:
            seconds, _ = common.timed(lambda: sliding_window_probabilities(
                model, image, text, patch, overlap, device, batch), device)
            peaks[str(batch)] = {"peak_bytes": int(torch.cuda.max_memory_allocated()), "pass_s": round(seconds, 3)}
        except torch.OutOfMemoryError:
            peaks[str(batch)] = {"peak_bytes": None, "note": "out of memory"}
        common.log(f"MoME alone, K=20, {batch} window(s) per batch: {peaks[str(batch)]}")
    estimate = estimated_window_bytes(patch, feature_size, 20)
    return {
        "what": "torch.cuda.max_memory_allocated over one sliding-window pass of MoME alone at K = 20 (bf16 "
                "autocast), weights included, other networks moved off the GPU; by windows per batch",
        "by_windows_per_batch": peaks,
        "engine_estimate_bytes_per_window": estimate,
        "engine_batch_with_8GB_free": max(1, min(8, int(0.6 * 8e9 // estimate))),
    }


# ---------------------------------------------------------------------------- targets
def evaluate_targets(args: argparse.Namespace, e2e: dict[str, Any] | None, side: dict[str, Any] | None,
                     cold: dict[str, Any] | None, machine: dict[str, Any]) -> dict[str, Any]:
    cpu = args.device == "cpu"
    quick = " (quick run: small CT, not comparable)" if args.quick else ""
    cores = machine.get("cpu_affinity") or machine.get("cpu_count")
    core_note = f"measured on {cores} cores, shared with other work (see load_average)"
    side_note = ("network seconds over the same sliding-window workload, MoME / bare backbone (ratio of medians; "
                 "see side_by_side for the paired and with-stitching ratios)")
    if args.workload == "paper":
        return evaluate_paper_targets(args, side, side_note + quick)
    fast = e2e["fast"]["end_to_end_s"]["median"] if e2e else None
    full = e2e["full"]["end_to_end_s"]["median"] if e2e else None
    peak = max(e2e["fast"]["peak_rss_bytes"], e2e["full"]["peak_rss_bytes"]) if e2e else None
    targets = {
        "cpu_fast_end_to_end_s": common.check_target(
            fast, TARGETS["cpu_fast_end_to_end_s"], cpu and not args.quick,
            (core_note if cpu else "a CPU target; this run is on CUDA") + quick),
        "cpu_full_end_to_end_s": common.check_target(
            full, TARGETS["cpu_full_end_to_end_s"], cpu and not args.quick,
            (core_note if cpu else "a CPU target; this run is on CUDA") + quick),
        "peak_ram_bytes": common.check_target(
            peak, TARGETS["peak_ram_bytes"], not args.quick, "max RSS of the end-to-end processes (fast and full)" + quick),
        "gpu_full_end_to_end_s": common.check_target(
            full, TARGETS["gpu_full_end_to_end_s"], not cpu and not args.quick,
            ("a GPU target; this run is on the CPU" if cpu else "") + quick),
        "cold_start_first_window_s": common.check_target(
            cold["median_s"]["first_window"] if cold else None, TARGETS["cold_start_first_window_s"],
            cpu and cold is not None and not args.quick,
            ("process start → first finished window of `mome segment --fast` (median); " + core_note if cpu
             else "a CPU target; this run is on CUDA") + quick),
    }
    if side:
        for size, data in side["sizes"].items():
            at5 = data["k"].get("5")
            targets[f"mome_over_backbone_at_k5_{size}"] = common.check_target(
                at5["mome_over_backbone"] if at5 else None, TARGETS["mome_over_backbone_at_k5"], at5 is not None,
                side_note + quick)
    return targets


def evaluate_paper_targets(args: argparse.Namespace, side: dict[str, Any] | None,
                           note: str) -> dict[str, Any]:
    """Issue 13's paper-scale targets: GPU targets; on the CPU the ratios are reported as their analogue
    (``pass`` null: the GPU's balance of arithmetic and memory traffic differs)."""
    cuda = args.device == "cuda"
    analogue = "" if cuda else " — CPU analogue of a GPU target, not its verdict"
    data = side["sizes"]["paper"] if side else {}
    targets = {}
    for k, key in ((5, "paper_mome_over_backbone_at_k5"), (20, "paper_mome_over_backbone_at_k20")):
        entry = data.get("k", {}).get(str(k))
        measured = entry["mome_over_backbone"] if entry else None
        targets[key] = common.check_target(measured, TARGETS[key], cuda and entry is not None, note + analogue)
    memory = data.get("mome_alone_gpu_memory_k20", {}).get("by_windows_per_batch", {})
    smallest = next((m["peak_bytes"] for m in memory.values() if m.get("peak_bytes")), None)
    targets["paper_gpu_peak_bytes_at_k20"] = common.check_target(
        smallest, TARGETS["paper_gpu_peak_bytes_at_k20"], cuda and smallest is not None,
        "peak GPU memory of MoME alone at K = 20 with one window per batch (the smallest batch, what an 8 GB card "
        "runs); see side_by_side.sizes.paper.mome_alone_gpu_memory_k20 for larger batches"
        if cuda else "a GPU target; this run is on the CPU")
    return targets


# ---------------------------------------------------------------------------- main
def locate_default_model(requested: str | None, workdir: Path) -> tuple[Path, dict[str, Any]]:
    from mome.hub import ModelNotFoundError, resolve_model

    try:
        path = resolve_model(requested)
        how = "mome.hub.resolve_model"
    except ModelNotFoundError as exc:
        if requested is not None:
            raise
        from Testing.stand_ins import random_package  # test doubles, importable from a checkout
        from mome.package import Preprocessing

        pre = Preprocessing(spacing=(3.0, 3.0, 3.0), fast_spacing=(3.0, 3.0, 3.0), patch_size=(64, 64, 64))
        path = random_package("tiny", preprocessing=pre).save(workdir / "random-tiny")
        how = f"RANDOM tiny package (mome-mini's settings: 3 mm, 64³), the default model is missing: {exc}"
    return Path(path), {"path": str(path), "located_via": how}


def paper_package(workdir: Path) -> tuple[Path, dict[str, Any]]:
    """A random-weight paper-size MoME package (feature size 48, 1.5 mm, 96³ windows) that knows the
    first PAPER_CLASSES vocabulary structures, so that K = 20 prompts need no text encoder."""
    from Testing.stand_ins import random_package  # test doubles, importable from a checkout
    from mome.package import Preprocessing
    from mome.vocabulary import load_vocabulary

    keys = [s.key for s in list(load_vocabulary())[:PAPER_CLASSES]]
    path = random_package("paper", class_keys=keys, preprocessing=Preprocessing(), name="random-paper").save(
        workdir / "random-paper")
    return Path(path), {"path": str(path), "located_via": "RANDOM paper-size package built by the benchmark "
                        "(Testing.stand_ins.random_package('paper'), default Preprocessing: 1.5 mm, 96³)"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.block_optional_imports(args.block_optional_imports)
    if args.child:
        job = json.loads(args.child)
        common.emit_child_result(end_to_end_child(job))
        return 0

    process_settings = cli_process_settings()  # before torch is imported, as `mome segment` does
    started = time.perf_counter()
    load_start = common.load_average()
    from mome.inference.sliding import FAST_OVERLAP, FULL_OVERLAP
    from mome.package import ModelPackage

    machine = common.machine_info(args.device)
    common.resolve_device(args.device)
    source = args.ct or common.shared_data_dir() / "totalseg_example" / "example_ct.nii.gz"
    if not source.exists():
        sys.exit(f"source CT {source} not found: pass --ct or set MOME_SHARED_DATA")
    name = NAME if args.workload == "mini" else f"{NAME}-{args.workload}"
    out_path = args.out or common.default_out(name, args.device, args.quick)
    workdir = Path(tempfile.mkdtemp(prefix="mome-bench-"))
    try:
        size, fraction = (QUICK_CT_SIZE, QUICK_FOV_FRACTION) if args.quick else (FULL_CT_SIZE, 1.0)
        common.log(f"building the {size[0]}×{size[1]}×{size[2]} benchmark CT from {source}")
        clock = time.perf_counter()
        ct_path = workdir / f"ct-{size[0]}x{size[1]}x{size[2]}.nii.gz"
        ct = build_ct(source, size, fraction, ct_path)
        ct["build_s"] = round(time.perf_counter() - clock, 2)

        if args.workload == "paper" and args.model is None:
            model_path, model = paper_package(workdir)
        else:
            model_path, model = locate_default_model(args.model, workdir)
        package = ModelPackage.load(model_path)
        model.update({
            "name": package.info.name, "version": package.info.version, "variant": package.config.variant,
            "feature_size": package.config.feature_size, "preprocessing": package.preprocessing.to_dict(),
            "stored_values": sum(t.numel() for t in package.state_dict.values()),
        })
        if tuple(package.preprocessing.fast_spacing) == tuple(package.preprocessing.spacing):
            model["note"] = (f"fast_spacing equals spacing in this package: --fast differs from full mode only in "
                             f"the windows' overlap ({FAST_OVERLAP} instead of {FULL_OVERLAP})")

        cold = None
        if args.workload == "mini" and not args.skip_cold_start:
            cold = run_cold_start(args, ct_path, model_path, workdir)
        e2e = None if args.skip_end_to_end else run_end_to_end(args, ct_path, model_path, workdir)
        side = None if args.skip_side_by_side else run_side_by_side(args, ct_path, package)
        result = {
            **common.result_header(NAME, machine),
            "settings": {
                "workload": args.workload, "device": args.device, "sizes": args.size, "repeats": args.repeats,
                "passes": args.passes, "prompts_k": args.prompts, "end_to_end_prompts_k": args.e2e_prompts,
                "max_windows": args.max_windows, "quick": args.quick, "skip_end_to_end": args.skip_end_to_end,
                "skip_side_by_side": args.skip_side_by_side, "skip_cold_start": args.skip_cold_start,
                "optional_imports_blocked": common.optional_imports_blocked(),
                "process_settings": process_settings,
            },
            "ct": ct,
            "model": model,
            "cold_start": cold,
            "end_to_end": e2e,
            "side_by_side": side,
            "targets": evaluate_targets(args, e2e, side, cold, machine),
            "unexpected_imports_parent": common.unexpected_third_party(),
            "load_average": {"start": load_start, "end": common.load_average()},
            "total_s": round(time.perf_counter() - started, 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    common.write_result(out_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
