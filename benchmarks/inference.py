#!/usr/bin/env python3
"""Inference benchmark: end-to-end segmentation time and peak memory, and the network's cost side by
side with its bare backbone and the Universal Model baseline. Writes one JSON file per run.

    python benchmarks/inference.py --device cpu                 # CPU, default settings
    python benchmarks/inference.py --device cuda --repeats 3    # GPU: tiny and paper side by side
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
PROMPTS_K5 = "liver, spleen, left kidney, right kidney, aorta"
TEXT_DIM = 384
VARIANTS = ("backbone", "universal", "mome")

TARGETS = {
    "cpu_fast_end_to_end_s": 60.0,
    "cpu_full_end_to_end_s": 300.0,
    "peak_ram_bytes": 4 * 1024**3,
    "gpu_full_end_to_end_s": 10.0,
    "mome_over_backbone_at_k5": 1.15,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
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
def end_to_end_child(job: dict[str, Any]) -> dict[str, Any]:
    """``job["repeats"]`` end-to-end segmentations of one configuration in this (fresh) process;
    timings of each, and the process's peak memory over all of them."""
    clock = time.perf_counter()
    import torch

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


def run_end_to_end(args: argparse.Namespace, ct_path: Path, model_path: Path, workdir: Path) -> dict[str, Any]:
    script = Path(__file__).resolve()
    results: dict[str, dict[str, Any]] = {}
    for mode in ("fast", "full"):
        common.log(f"end to end: {mode} mode, {args.repeats} run(s) in a fresh process")
        job = {"kind": "end_to_end", "name": f"end-to-end {mode}", "ct": str(ct_path), "model": str(model_path),
               "device": args.device, "fast": mode == "fast", "prompts": PROMPTS_K5, "repeats": args.repeats,
               "output": str(workdir / f"e2e-{mode}.seg.nrrd")}
        results[mode] = common.run_child(script, job)
        common.log(f"  peak RSS {results[mode]['peak_rss_bytes'] / 2**20:.0f} MiB")

    def collect(result: dict[str, Any]) -> dict[str, Any]:
        runs = result["runs"]
        keys = runs[0]["timings_s"].keys()
        out: dict[str, Any] = {
            "end_to_end_s": common.summary([r["timings_s"]["end_to_end"] for r in runs], 3),
            "first_run_s": runs[0]["timings_s"]["end_to_end"],
            "stages_median_s": {k: round(common.median([r["timings_s"][k] for r in runs]), 3) for k in keys},
            "segment_stages_median_s": {
                k: round(common.median([r["segment_stages_s"][k] for r in runs]), 3) for k in runs[0]["segment_stages_s"]
            },
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

    return {
        "what": "read CT → load model → Segmenter.segment → write .seg.nrrd (mome.io). One fresh process per mode "
                "(so that modes do not share memory peaks) running the repeats one after another; end_to_end_s "
                "excludes interpreter start, imports and CUDA context creation (process_setup_s), first_run_s is "
                "the cold first run of the process",
        "peak_rss_measured": common.PEAK_RSS_SOURCE,
        "prompts": PROMPTS_K5,
        "k": 5,
        "third_party_imports": results["full"]["third_party_imports"],
        "fast": collect(results["fast"]),
        "full": collect(results["full"]),
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
        "spacing_mm": list(pre.spacing),
        "patch_size": list(patch),
        "overlap": overlap,
        "windows": windows,
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
        del models
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"workload": workload, "sizes": sizes}


# ---------------------------------------------------------------------------- targets
def check(measured: float | None, target: float, applies: bool, note: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"target_max": target, "measured": measured}
    if not applies or measured is None:
        out["pass"] = None
        out["note"] = note or "not measured in this run"
    else:
        out["pass"] = bool(measured <= target)
        if note:
            out["note"] = note
    return out


def evaluate_targets(args: argparse.Namespace, e2e: dict[str, Any] | None, side: dict[str, Any] | None,
                     machine: dict[str, Any]) -> dict[str, Any]:
    cpu = args.device == "cpu"
    quick = " (quick run: small CT, not comparable)" if args.quick else ""
    cores = machine.get("cpu_affinity") or machine.get("cpu_count")
    core_note = f"measured on {cores} cores, shared with other work (see load_average)"
    fast = e2e["fast"]["end_to_end_s"]["median"] if e2e else None
    full = e2e["full"]["end_to_end_s"]["median"] if e2e else None
    peak = max(e2e["fast"]["peak_rss_bytes"], e2e["full"]["peak_rss_bytes"]) if e2e else None
    targets = {
        "cpu_fast_end_to_end_s": check(fast, TARGETS["cpu_fast_end_to_end_s"], cpu and not args.quick,
                                       (core_note if cpu else "a CPU target; this run is on CUDA") + quick),
        "cpu_full_end_to_end_s": check(full, TARGETS["cpu_full_end_to_end_s"], cpu and not args.quick,
                                       (core_note if cpu else "a CPU target; this run is on CUDA") + quick),
        "peak_ram_bytes": check(peak, TARGETS["peak_ram_bytes"], not args.quick,
                                "max RSS of the end-to-end processes (fast and full)" + quick),
        "gpu_full_end_to_end_s": check(full, TARGETS["gpu_full_end_to_end_s"], not cpu and not args.quick,
                                       ("a GPU target; this run is on the CPU" if cpu else "") + quick),
    }
    if side:
        for size, data in side["sizes"].items():
            at5 = data["k"].get("5")
            targets[f"mome_over_backbone_at_k5_{size}"] = check(
                at5["mome_over_backbone"] if at5 else None, TARGETS["mome_over_backbone_at_k5"], at5 is not None,
                "network seconds over the same sliding-window workload, MoME / bare backbone (ratio of medians; "
                "see side_by_side for the paired and with-stitching ratios)" + quick)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.block_optional_imports(args.block_optional_imports)
    if args.child:
        job = json.loads(args.child)
        common.emit_child_result(end_to_end_child(job))
        return 0

    started = time.perf_counter()
    load_start = common.load_average()
    from mome.package import ModelPackage

    machine = common.machine_info(args.device)
    common.resolve_device(args.device)
    source = args.ct or common.shared_data_dir() / "totalseg_example" / "example_ct.nii.gz"
    if not source.exists():
        sys.exit(f"source CT {source} not found: pass --ct or set MOME_SHARED_DATA")
    out_path = args.out or common.default_out(NAME, args.device, args.quick)
    workdir = Path(tempfile.mkdtemp(prefix="mome-bench-"))
    try:
        size, fraction = (QUICK_CT_SIZE, QUICK_FOV_FRACTION) if args.quick else (FULL_CT_SIZE, 1.0)
        common.log(f"building the {size[0]}×{size[1]}×{size[2]} benchmark CT from {source}")
        clock = time.perf_counter()
        ct_path = workdir / f"ct-{size[0]}x{size[1]}x{size[2]}.nii.gz"
        ct = build_ct(source, size, fraction, ct_path)
        ct["build_s"] = round(time.perf_counter() - clock, 2)

        model_path, model = locate_default_model(args.model, workdir)
        package = ModelPackage.load(model_path)
        model.update({
            "name": package.info.name, "version": package.info.version, "variant": package.config.variant,
            "feature_size": package.config.feature_size, "preprocessing": package.preprocessing.to_dict(),
            "stored_values": sum(t.numel() for t in package.state_dict.values()),
        })
        if tuple(package.preprocessing.fast_spacing) == tuple(package.preprocessing.spacing):
            model["note"] = "fast_spacing equals spacing in this package: --fast and full mode do the same work"

        e2e = None if args.skip_end_to_end else run_end_to_end(args, ct_path, model_path, workdir)
        side = None if args.skip_side_by_side else run_side_by_side(args, ct_path, package)
        result = {
            "benchmark": NAME,
            "created_utc": common.utc_now(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine,
            "settings": {
                "device": args.device, "sizes": args.size, "repeats": args.repeats, "passes": args.passes,
                "prompts_k": args.prompts,
                "quick": args.quick, "optional_imports_blocked": common.optional_imports_blocked(),
            },
            "ct": ct,
            "model": model,
            "end_to_end": e2e,
            "side_by_side": side,
            "targets": evaluate_targets(args, e2e, side, machine),
            "unexpected_imports_parent": common.unexpected_third_party(),
            "load_average": {"start": load_start, "end": common.load_average()},
            "total_s": round(time.perf_counter() - started, 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    common.write_json(out_path, result)
    common.log(f"wrote {out_path} ({result['total_s']} s)")
    for name, t in result["targets"].items():
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[t["pass"]]
        common.log(f"  {verdict} {name}: {t['measured']} (target ≤ {t['target_max']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
