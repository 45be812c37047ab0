#!/usr/bin/env python3
"""Training-data benchmark: peak memory of preparing and of training as the number of cases grows, and
the data loader's crops/s next to the model's steps/s. Writes one JSON file per run.

    python benchmarks/training_data.py                 # 6 / 24 / 96 cases at 1.5 mm, loader with 0 / 2 / 8 workers
    python benchmarks/training_data.py --quick         # smoke test (2 / 4 cases, a few minutes)

**Cases.** Synthesised from the real abdominal CT ``totalseg_example/example_ct.nii.gz`` and its 61-class
TotalSegmentator label map (``$MOME_SHARED_DATA`` or ``../shared/data``): ``--variants`` different
volumes, each resampled to a clinical-like grid (about 1.5 × 1.5 × 2 mm, every spacing jittered by ±10 %,
linear for the CT, nearest for the labels), with up to 10 % of the slices cut at either end, an HU
gain/offset and noise; case *i* of a manifest uses variant *i* mod ``--variants``. The labels map to
the 14 classes of ``recipes/mome-mini``. All cases are training cases: validation reads one case at a
time (its memory is that of one case whatever their number) and its sliding-window inference over
11 M voxels would dominate the run time on a CPU.

**Peak memory.** ``mome train CONFIG --prepare-only`` and ``mome train CONFIG --prepared`` (tiny model,
1.5 mm, 64³ crops, one crop and at most ``CLASSES_PER_STEP`` classes per step, CPU, 2 DataLoader
workers) run as child processes; so does one optimisation step of the same network on the same
settings with random data (``benchmarks/training.py``), the model's own share of the peak. Reported: the child's own peak RSS (``VmHWM``, exact) and, sampled every
0.1 s over the child and its DataLoader workers, the largest sum of RSS (counts pages the forked
workers share with it once per process) and of PSS (shares them out: the memory the run really takes).

**Throughput**, in this process, on the prepared folder of the middle case count: the DataLoader
alone (crops read from the memory-mapped cases and augmented) with 0 / 2 / 8 workers, crops/s over
``--loader-batches`` batches after the first; and, interleaved step by step, the tiny model alone
(training steps on batches taken from the loader beforehand) and the training loop's pattern (next
batch, then the step) with 0 and 2 workers: their paired ratio is what data loading costs a step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402  (also puts the repository on sys.path)

NAME = "training_data"
SPACING = 1.5
PATCH = 64
CROPS_PER_STEP = 1
# MoME's memory grows with the classes trained per step; the 14 recipe classes at once need more than
# the tiny model's whole budget (see ``model_step_alone``), so a step trains at most this many.
CLASSES_PER_STEP = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, nargs="+", default=None, help="case counts (default 6 24 96)")
    p.add_argument("--workers", type=int, nargs="+", default=None, help="loader workers to time (default 0 2 8)")
    p.add_argument("--variants", type=int, default=8, help="distinct synthetic volumes (default 8)")
    p.add_argument("--steps", type=int, default=None, help="training steps per --prepared run (default 8)")
    p.add_argument("--loader-batches", type=int, default=None, help="timed loader batches (default 24)")
    p.add_argument("--model-steps", type=int, default=None, help="timed model steps (default 6)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 and 4 cases from 3 mm volumes")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default: benchmarks/results/training_data-cpu[-quick].json)")
    args = p.parse_args(argv)
    args.cases = args.cases or ([2, 4] if args.quick else [6, 24, 96])
    args.workers = args.workers or ([0, 2] if args.quick else [0, 2, 8])
    args.steps = args.steps or (2 if args.quick else 8)
    args.loader_batches = args.loader_batches or (4 if args.quick else 24)
    args.model_steps = args.model_steps or (2 if args.quick else 6)
    return args


# ---------------------------------------------------------------------------- synthetic cases
def synthesise(work: Path, variants: int, quick: bool) -> tuple[list[tuple[Path, Path]], dict[str, Any]]:
    import numpy as np
    import SimpleITK as sitk

    source = common.shared_data_dir() / "totalseg_example"
    ct = sitk.ReadImage(str(source / "example_ct.nii.gz"), sitk.sitkFloat32)
    seg = sitk.ReadImage(str(source / "example_seg_fast_force_split.nii.gz"))
    base_spacing = (3.0, 3.0, 3.0) if quick else (1.5, 1.5, 2.0)
    out, sizes = [], []
    for v in range(variants):
        rng = np.random.default_rng([7, v])
        spacing = [s * (1 + rng.uniform(-0.1, 0.1)) for s in base_spacing]
        extent = np.array(ct.GetSize()) * np.array(ct.GetSpacing())
        size = [int(round(e / s)) for e, s in zip(extent, spacing)]
        cut = [int(rng.uniform(0, 0.1) * size[2]), int(rng.uniform(0, 0.1) * size[2])]
        size[2] -= sum(cut)
        direction = np.array(ct.GetDirection()).reshape(3, 3)
        # First voxel centre: the source's corner, moved up by the slices cut at the bottom.
        corner = np.array(ct.GetOrigin()) - direction @ (np.array(ct.GetSpacing()) / 2)
        origin = corner + direction @ (np.array(spacing) / 2) + direction[:, 2] * cut[0] * spacing[2]
        ref = sitk.Image(size, sitk.sitkUInt8)
        ref.SetSpacing(spacing)
        ref.SetOrigin(origin.tolist())
        ref.SetDirection(ct.GetDirection())
        image = sitk.Resample(ct, ref, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkFloat32)
        labels = sitk.Resample(seg, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, seg.GetPixelID())
        hu = sitk.GetArrayFromImage(image)
        hu = hu * rng.uniform(0.95, 1.05) + rng.uniform(-20, 20) + rng.normal(0, 10, hu.shape).astype(np.float32)
        noisy = sitk.GetImageFromArray(np.clip(hu, -1024, 3071).astype(np.int16))
        noisy.CopyInformation(image)
        paths = (work / f"variant{v}_ct.nii.gz", work / f"variant{v}_labels.nii.gz")
        sitk.WriteImage(noisy, str(paths[0]))
        sitk.WriteImage(labels, str(paths[1]))
        out.append(paths)
        sizes.append(size)
        common.log(f"synthetic variant {v}: {size} voxels at {np.round(spacing, 2).tolist()} mm")
    voxels = [int(np.prod(s)) for s in sizes]
    info = {
        "source": "totalseg_example/example_ct.nii.gz + example_seg_fast_force_split.nii.gz (real CT, "
                  "TotalSegmentator labels), resampled and perturbed: these are synthetic cases",
        "variants": variants, "base_spacing_mm": list(base_spacing), "spacing_jitter": "±10 % per axis",
        "z_cut": "0-10 % of the slices at either end", "intensity": "gain 0.95-1.05, offset ±20 HU, noise σ 10 HU",
        "input_voxels": {"min": min(voxels), "max": max(voxels)}, "input_sizes": sizes,
    }
    return out, info


def write_manifest(work: Path, n: int, variants: list[tuple[Path, Path]]) -> Path:
    import yaml

    recipe = yaml.safe_load((common.REPO / "recipes" / "mome-mini" / "manifest.yaml").read_text())
    label_map = recipe["datasets"][0]["label_map"]
    cases = [{"id": f"case{i:03d}", "image": str(variants[i % len(variants)][0]),
              "labels": str(variants[i % len(variants)][1]), "split": "train"} for i in range(n)]
    path = work / f"manifest-{n}.yaml"
    path.write_text(yaml.safe_dump({"name": f"synthetic-{n}", "datasets": [
        {"name": "synthetic", "label_map": label_map, "cases": cases}]}))
    return path


def write_config(work: Path, manifest: Path, steps: int) -> Path:
    import yaml

    config = {
        "name": "bench", "version": "1.0.0", "output": str(work / "run"), "device": "cpu", "seed": 0,
        "validate_every": 10_000, "checkpoint_every": 10_000, "keep": "last",
        "model": {"size": "tiny", "text_encoder": "minilm"},
        "data": {"manifest": str(manifest), "spacing": [SPACING] * 3, "patch_size": [PATCH] * 3,
                 "crops_per_case": CROPS_PER_STEP, "max_classes_per_step": CLASSES_PER_STEP, "augment": True,
                 "num_workers": 2},
        "optim": {"steps": steps, "lr": 1e-3, "warmup_steps": 2},
    }
    path = work / f"config-{manifest.stem}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ---------------------------------------------------------------------------- memory of a process tree
def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return pids


def run_measured(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``command``; its peak RSS (VmHWM) and the sampled peak RSS / PSS sums over its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            cwd=common.REPO)
    peak = {"hwm": 0, "rss_sum": 0, "pss_sum": 0, "processes": 1}
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    while proc.poll() is None:
        pids = _tree(proc.pid)
        statuses = [_status(p) for p in pids]
        peak["hwm"] = max(peak["hwm"], statuses[0].get("VmHWM", 0))
        peak["rss_sum"] = max(peak["rss_sum"], sum(s.get("VmRSS", 0) for s in statuses))
        peak["pss_sum"] = max(peak["pss_sum"], sum(_pss(p) for p in pids))
        peak["processes"] = max(peak["processes"], len(pids))
        time.sleep(0.1)
    reader.join()
    if proc.returncode != 0:
        sys.stderr.write("".join(output[-40:]))
        raise RuntimeError(f"{' '.join(command)} failed with exit code {proc.returncode}")
    return {"peak_rss_bytes": peak["hwm"], "tree_peak_rss_sum_bytes": peak["rss_sum"],
            "tree_peak_pss_sum_bytes": peak["pss_sum"], "max_processes": peak["processes"],
            "wall_s": round(time.perf_counter() - started, 1)}


# ---------------------------------------------------------------------------- throughput
def throughput(folder: Path, workers: list[int], batches: int, model_steps: int) -> dict[str, Any]:
    import torch

    from mome.training.prepared import PreparedData
    from mome.training.sampling import TrainingCrops, training_loader
    from mome.vocabulary import load_vocabulary
    from training import Variant  # benchmarks/training.py: the same optimisation step it times

    data = PreparedData.open(folder)
    vocab = load_vocabulary()
    kinds = {k: vocab.get(k).kind for k in data.classes}
    steps = batches + 1

    def crops(n_steps: int) -> TrainingCrops:
        return TrainingCrops(data, data.train, kinds, (PATCH,) * 3, CROPS_PER_STEP, 5.0, True, seed=0, steps=n_steps)

    loader: dict[str, Any] = {}
    for w in workers:
        it = iter(training_loader(crops(steps), 0, w, pin_memory=False))
        first = time.perf_counter()
        next(it)  # worker start-up and the first batch: not counted
        start = time.perf_counter()
        n = sum(b.image.shape[0] for b in it)
        seconds = time.perf_counter() - start
        loader[str(w)] = {"crops_per_s": round(n / seconds, 2), "crops": n, "seconds": round(seconds, 2),
                          "first_batch_s": round(start - first, 2)}
        common.log(f"loader, {w} workers: {n / seconds:.2f} crops/s")
        del it

    device = torch.device("cpu")
    k = CLASSES_PER_STEP
    runner = Variant("mome", "tiny", k, device)
    text = torch.randn(k, 384)
    sample = [b for _, b in zip(range(model_steps + 1), training_loader(crops(model_steps + 1), 0, 0, False))]

    def step(b) -> None:  # the trainer also trains K = CLASSES_PER_STEP of the labelled classes per step
        runner.step({"image": b.image, "target": b.target[:, :k].float(), "labelled": b.labelled[:, :k],
                     "text": text})

    step(sample[0])  # warm-up (AdamW state)
    # The training loop's pattern (next batch, then a step) against a step on a batch made beforehand,
    # interleaved step by step so that both see the same load on a shared machine.
    alone: list[float] = []
    together: dict[str, Any] = {}
    for w in [w for w in workers if w <= 2]:
        it = iter(training_loader(crops(model_steps + 1), 0, w, pin_memory=False))
        step(next(it))
        model_t, loop_t = [], []
        for i in range(model_steps):
            model_t.append(common.timed(lambda: step(sample[1 + i % model_steps]), device)[0])
            loop_t.append(common.timed(lambda: step(next(it)), device)[0])
        alone += model_t
        together[str(w)] = {"steps_per_s": round(1 / common.median(loop_t), 3), "step_s": common.summary(loop_t),
                            "loop_over_model_alone_paired": round(common.median(
                                [a / b for a, b in zip(loop_t, model_t)]), 3)}
        common.log(f"training loop, {w} workers: {1 / common.median(loop_t):.3f} steps/s "
                   f"({together[str(w)]['loop_over_model_alone_paired']}x the step alone)")
        del it
    model_steps_per_s = 1 / common.median(alone)
    common.log(f"model alone: {model_steps_per_s:.3f} steps/s ({CROPS_PER_STEP} crop each)")
    return {
        "prepared_cases": len(data.train), "classes_k": len(data.classes), "classes_per_step": k,
        "crops_per_step": CROPS_PER_STEP,
        "loader_alone": loader,
        "model_alone": {"steps_per_s": round(model_steps_per_s, 3), "step_s": common.summary(alone),
                        "crops_consumed_per_s": round(model_steps_per_s * CROPS_PER_STEP, 2)},
        "loader_over_model_crops": {w: round(v["crops_per_s"] / (model_steps_per_s * CROPS_PER_STEP), 1)
                                    for w, v in loader.items()},
        "training_loop": together,
    }


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_start = common.load_average()
    machine = common.machine_info("cpu")
    out_path = args.out or common.default_out(NAME, "cpu", args.quick)
    work = args.work or Path(tempfile.mkdtemp(prefix="mome-bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(common.REPO)}
    try:
        variants, synthetic = synthesise(work, args.variants, args.quick)
        runs: dict[str, Any] = {}
        middle = args.cases[len(args.cases) // 2]
        through = None
        for n in args.cases:
            manifest = write_manifest(work, n, variants)
            config = write_config(work, manifest, args.steps)
            prepared = work / f"prepared-{n}"
            shutil.rmtree(prepared, ignore_errors=True)
            shutil.rmtree(work / "run", ignore_errors=True)
            mome = [sys.executable, "-m", "mome.cli.main", "train", str(config), "--progress", "none"]
            prep = run_measured(mome + ["--prepare-only", str(prepared)], env)
            common.log(f"{n} cases: prepare peak RSS {prep['peak_rss_bytes'] / 2**30:.2f} GiB ({prep['wall_s']} s)")
            train = run_measured(mome + ["--prepared", str(prepared)], env)
            common.log(f"{n} cases: train peak RSS {train['peak_rss_bytes'] / 2**30:.2f} GiB, tree PSS "
                       f"{train['tree_peak_pss_sum_bytes'] / 2**30:.2f} GiB ({train['wall_s']} s)")
            size = sum(f.stat().st_size for f in prepared.rglob("*") if f.is_file())
            runs[str(n)] = {"prepare": prep, "train": train, "prepared_folder_bytes": size}
            if n == middle:
                # The same run with the allocator setting of the inference commands (mome/runtime.py:
                # up to 1 GiB of freed memory kept for reuse): faster on a CPU, but a higher peak, which
                # is why `mome train` keeps glibc's default.
                shutil.rmtree(work / "run", ignore_errors=True)
                reuse = [sys.executable, "-c", "import sys, mome.runtime as r; r.tune_allocator(); "
                         "from mome.cli.main import main; sys.exit(main(sys.argv[1:]))",
                         *mome[3:], "--prepared", str(prepared)]
                runs[str(n)]["train_allocator_keeping_freed_memory"] = run_measured(reuse, env)
                common.log(f"{n} cases, allocator keeping freed memory: train peak RSS "
                           f"{runs[str(n)]['train_allocator_keeping_freed_memory']['peak_rss_bytes'] / 2**30:.2f} GiB")
                through = throughput(prepared, args.workers, args.loader_batches, args.model_steps)
            shutil.rmtree(prepared, ignore_errors=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)

    # The network's own peak for one step on these settings (fresh process, random data), for scale.
    model_alone = common.run_child(common.BENCH_DIR / "training.py", {
        "name": "model step alone", "variant": "mome", "size": "tiny", "patch": PATCH,
        "classes": CLASSES_PER_STEP, "device": "cpu"})
    model_alone.pop("unexpected_imports", None)
    common.log(f"model step alone: peak RSS {model_alone['peak_rss_bytes'] / 2**30:.2f} GiB")
    for run in runs.values():
        run["train"]["over_model_step_alone_bytes"] = run["train"]["peak_rss_bytes"] - model_alone["peak_rss_bytes"]
    limit = 2.5e9
    targets = {f"{stage}_{n}_cases_peak_rss_le_2.5GB": {
        "target_max_bytes": limit, "measured": runs[str(n)][stage]["peak_rss_bytes"],
        "measured_tree_pss": runs[str(n)][stage]["tree_peak_pss_sum_bytes"],
        "pass": runs[str(n)][stage]["peak_rss_bytes"] <= limit and runs[str(n)][stage]["tree_peak_pss_sum_bytes"] <= limit,
    } for stage in ("prepare", "train") for n in args.cases if n == 24}
    first, last = str(args.cases[0]), str(args.cases[-1])
    result = {
        **common.result_header(NAME, machine),
        "settings": {
            "cases": args.cases, "spacing_mm": SPACING, "patch": PATCH, "crops_per_step": CROPS_PER_STEP,
            "model": "tiny MoME, MiniLM text encoder", "steps_per_train_run": args.steps,
            "validation": "none: every case is a training case (validation holds one case at a time)",
            "classes_per_step": CLASSES_PER_STEP,
            "train_num_workers": 2, "loader_workers": args.workers, "quick": args.quick,
            "memory_measured": "child process VmHWM (exact); sums over the process tree sampled every 0.1 s",
        },
        "synthetic_cases": synthetic,
        "runs": runs,
        "growth": {stage: {"peak_rss_ratio_last_over_first": common.ratio(runs[last][stage]["peak_rss_bytes"],
                                                                          runs[first][stage]["peak_rss_bytes"]),
                           "cases_ratio": round(int(last) / int(first), 1)} for stage in ("prepare", "train")},
        "model_step_alone": {**model_alone, "what": "benchmarks/training.py memory child: tiny MoME, one crop, "
                             f"{CLASSES_PER_STEP} classes, two AdamW steps on random data, no data pipeline"},
        "throughput": through,
        "targets": targets,
        "load_average": {"start": load_start, "end": common.load_average()},
        "total_s": round(time.perf_counter() - started, 1),
    }
    common.write_json(out_path, result)
    common.log(f"wrote {out_path} ({result['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
