#!/usr/bin/env python3
"""MoME side by side with the peer users would pick instead: nnU-Net v2 as TotalSegmentator runs it.

    python benchmarks/peer_nnunet.py --device cpu      # results/peer_nnunet-cpu.json
    python benchmarks/peer_nnunet.py --device cuda     # results/peer_nnunet-cuda.json
    python benchmarks/peer_nnunet.py --quick           # smoke test: small CT, 3 mm pair only

Two pairs, each timed end to end in fresh processes on the same 512×512×300 CT and device, in
rotating order round after round (so that load changes on a shared machine hit every side alike):

* **3 mm**: mome-mini ``--fast`` with K = 5 prompts (and, in the same rounds, its full mode) against
  nnU-Net's 3d_fullres network planned at 3 mm with 117 classes (TotalSegmentator's ``--fast`` mode
  runs one such network);
* **1.5 mm**: a random-weight paper-size MoME (feature size 48, 96³ windows) with K = 20 prompts
  against nnU-Net's 3d_fullres network planned at 1.5 mm with 24 classes (TotalSegmentator's normal
  mode runs five of these, one per part of its 117 classes).

nnU-Net's networks come from nnU-Net's own planner on a small CT dataset derived from the shared
abdomen CT, with random weights, and predict with nnU-Net's own predictor (``_nnunet.py``). It runs
under a Python with ``nnunetv2`` (``--nnunet-python``; see benchmarks/README.md), with the same
process settings as MoME's (``mome.runtime``), so the comparison is of the two methods.
Ratios are MoME / nnU-Net: below 1 MoME is faster. Absolute CPU seconds are context only.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import inference  # noqa: E402  (the CT, the MoME end-to-end child and the paper package)

NAME = "peer_nnunet"
NNUNET_SCRIPT = Path(__file__).resolve().parent / "_nnunet.py"
SOURCE_LABELS = "example_seg_fast_force_split.nii.gz"  # TotalSegmentator's own labels of the shared CT
TARGETS = {
    "mini_fast_over_nnunet_3mm_end_to_end": 1.0,
    "paper_k20_over_nnunet_1p5mm_end_to_end": 1.0,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--pairs", nargs="+", choices=("3mm", "1.5mm"), default=None,
                   help="which pairs to time (default: both; --quick: 3mm)")
    p.add_argument("--rounds", type=int, default=None, help="rounds of the 3 mm pair (default 3; CPU 2; quick 1)")
    p.add_argument("--rounds-paper", type=int, default=None,
                   help="rounds of the 1.5 mm pair (default 3; CPU 1: a round takes about an hour on 2 cores)")
    p.add_argument("--nnunet-python", default=None,
                   help="a Python with nnunetv2 (default: $MOME_BENCH_NNUNET_PYTHON, this Python if it has "
                        "nnunetv2, else .venv-nnunet/bin/python in the repository)")
    p.add_argument("--ct", type=Path, default=None, help="source CT (default: the shared example_ct.nii.gz)")
    p.add_argument("--model", default=None, help="the 3 mm MoME package (default: the default model, mome-mini)")
    p.add_argument("--quick", action="store_true", help="smoke test: 128×128×64 CT, 3 mm pair, 1 round")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default: benchmarks/results/peer_nnunet-<device>.json)")
    args = p.parse_args(argv)
    cpu = args.device == "cpu"
    args.pairs = args.pairs or (["3mm"] if args.quick else ["3mm", "1.5mm"])
    args.rounds = args.rounds or (1 if args.quick else 2 if cpu else 3)
    args.rounds_paper = args.rounds_paper or (1 if args.quick or cpu else 3)
    return args


def nnunet_python(requested: str | None) -> str:
    candidates = [requested, os.environ.get("MOME_BENCH_NNUNET_PYTHON")]
    if importlib.util.find_spec("nnunetv2") is not None:
        candidates.append(sys.executable)
    candidates.append(str(common.REPO / ".venv-nnunet" / "bin" / "python"))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("no Python with nnunetv2 found: pass --nnunet-python (benchmarks/README.md says how to make one)")


def run_nnunet(python: str, job: dict[str, Any]) -> dict[str, Any]:
    """One ``_nnunet.py`` job in a fresh process of the nnU-Net Python; its result and wall time."""
    start = time.perf_counter()
    done = subprocess.run([python, str(NNUNET_SCRIPT), json.dumps(job)], stdout=subprocess.PIPE, text=True,
                          cwd=common.REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith(common._RESULT_MARK)]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:])
        raise RuntimeError(f"nnU-Net job {job['kind']} failed with exit code {done.returncode}")
    result = json.loads(lines[-1][len(common._RESULT_MARK):])
    result["process_wall_s"] = round(time.perf_counter() - start, 3)
    return result


def time_pair(pair: str, rounds: int, mome_jobs: dict[str, dict[str, Any]], nnunet_job: dict[str, Any],
              python: str) -> dict[str, Any]:
    """``rounds`` end-to-end runs of each side (every MoME job and nnU-Net), rotating which goes first.

    ``mome_jobs``: side name → end-to-end job, e.g. ``{"mome": fast, "mome_full": full}``; each side is
    reported under its name, with its ratios to nnU-Net as ``<side>_over_nnunet_*``.
    """
    script = Path(inference.__file__).resolve()
    sides = [*mome_jobs, "nnunet"]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    for r in range(rounds):
        for side in sides[r % len(sides):] + sides[:r % len(sides)]:
            if side == "nnunet":
                runs[side].append(run_nnunet(python, nnunet_job))
                seconds = runs[side][-1]["end_to_end_s"]
            else:
                runs[side].append(inference.collect_end_to_end(common.run_child(script, mome_jobs[side])))
                seconds = runs[side][-1]["end_to_end_s"]["median"]
            common.log(f"{pair} round {r + 1}/{rounds}: {side} {seconds:.1f} s end to end")
    nn_e2e = [n["end_to_end_s"] for n in runs["nnunet"]]
    nn_net = [n["network_s"] for n in runs["nnunet"]]
    result: dict[str, Any] = {"rounds": rounds}
    for side, job in mome_jobs.items():
        e2e = [m["end_to_end_s"]["median"] for m in runs[side]]
        net = [m["segment_stages_median_s"]["inference"] for m in runs[side]]
        result[side] = {
            "end_to_end_s": common.summary(e2e, 3),
            "network_s": common.summary(net, 3),
            "prompts": job["prompts"],
            "fast": job["fast"],
            "peak_rss_bytes": max(m["peak_rss_bytes"] for m in runs[side]),
            "runs": runs[side],
        }
        result[f"{side}_over_nnunet_end_to_end"] = common.ratio(common.median(e2e), common.median(nn_e2e))
        result[f"{side}_over_nnunet_end_to_end_paired"] = round(
            common.median([m / n for m, n in zip(e2e, nn_e2e)]), 3)
        result[f"{side}_over_nnunet_network"] = common.ratio(common.median(net), common.median(nn_net))
    result["nnunet"] = {
        "end_to_end_s": common.summary(nn_e2e, 3),
        "network_s": common.summary(nn_net, 3),
        "peak_rss_bytes": max(n["peak_rss_bytes"] for n in runs["nnunet"]),
        "runs": runs["nnunet"],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    process_settings = inference.cli_process_settings()  # before torch; children inherit the wait policy
    started = time.perf_counter()
    load_start = common.load_average()
    machine = common.machine_info(args.device)
    common.resolve_device(args.device)
    python = nnunet_python(args.nnunet_python)
    data = common.shared_data_dir() / "totalseg_example"
    source = args.ct or data / "example_ct.nii.gz"
    labels = data / SOURCE_LABELS
    for needed in (source, labels):
        if not needed.exists():
            sys.exit(f"{needed} not found: set MOME_SHARED_DATA (or pass --ct)")
    out_path = args.out or common.default_out(NAME, args.device, args.quick)
    workdir = Path(tempfile.mkdtemp(prefix="mome-peer-"))
    try:
        size, fraction = ((inference.QUICK_CT_SIZE, inference.QUICK_FOV_FRACTION) if args.quick
                          else (inference.FULL_CT_SIZE, 1.0))
        common.log(f"building the {size[0]}×{size[1]}×{size[2]} benchmark CT from {source}")
        ct_path = workdir / "ct.nii.gz"
        ct = inference.build_ct(source, size, fraction, ct_path)
        nnunet_root = workdir / "nnunet"  # nnUNet_raw, nnUNet_preprocessed, nnUNet_results

        pairs: dict[str, Any] = {}
        for pair in args.pairs:
            which = "3mm" if pair == "3mm" else "1.5mm"
            common.log(f"{pair}: planning nnU-Net ({python})")
            plan = run_nnunet(python, {"kind": "plan", "root": str(nnunet_root), "ct": str(source),
                                       "labels": str(labels), "which": which})
            common.log(f"  plans: spacing {plan['spacing_mm']}, patch {plan['patch_size']}, "
                       f"{plan['parameters'] / 1e6:.1f} M parameters")
            if pair == "3mm":
                model_path, model = inference.locate_default_model(args.model, workdir)
                # The target is for fast mode; full mode (half-overlapping windows, as nnU-Net's tile
                # step) is timed in the same rounds, so that both trade-offs are side by side.
                mome_jobs = {side: inference.end_to_end_job(f"mome-mini-{mode}", ct_path, model_path, args.device,
                                                            mode == "fast", inference.PROMPTS_K5, 1, workdir)
                             for side, mode in (("mome", "fast"), ("mome_full", "full"))}
                rounds = args.rounds
            else:
                model_path, model = inference.paper_package(workdir)
                mome_jobs = {"mome": inference.end_to_end_job("mome-paper-k20", ct_path, model_path, args.device,
                                                              False, inference.paper_prompts(20), 1, workdir)}
                rounds = args.rounds_paper
            nnunet_job = {"kind": "predict", "root": str(nnunet_root), "model_folder": plan["model_folder"],
                          "ct": str(ct_path), "output": str(workdir / f"nnunet-{which}.nii.gz"),
                          "workdir": str(workdir / f"nnunet-{which}"), "device": args.device}
            Path(nnunet_job["workdir"]).mkdir(exist_ok=True)
            pairs[pair] = {"mome_model": model, "nnunet_plan": plan,
                           **time_pair(pair, rounds, mome_jobs, nnunet_job, python)}
            if pair == "1.5mm":
                # TotalSegmentator's normal mode runs five such networks on the same resampled CT.
                nn = pairs[pair]["nnunet"]
                one = common.median([r["steps_s"]["nnunet_predict_from_files"] for r in nn["runs"]])
                five = nn["end_to_end_s"]["median"] + 4 * one
                pairs[pair]["nnunet_five_networks_estimate_s"] = round(five, 3)
                pairs[pair]["mome_over_nnunet_five_networks_estimate"] = common.ratio(
                    pairs[pair]["mome"]["end_to_end_s"]["median"], five)

        cpu = args.device == "cpu"
        quick = " (quick run: small CT, not comparable)" if args.quick else ""
        targets = {}
        if "3mm" in pairs:
            targets["mini_fast_over_nnunet_3mm_end_to_end"] = common.check_target(
                pairs["3mm"]["mome_over_nnunet_end_to_end"], TARGETS["mini_fast_over_nnunet_3mm_end_to_end"],
                cpu and not args.quick, ("mome-mini --fast (K = 5) / nnU-Net 3 mm, end to end, on 2 shared cores"
                                         if cpu else "a CPU target; this run is on CUDA") + quick)
        if "1.5mm" in pairs:
            targets["paper_k20_over_nnunet_1p5mm_end_to_end"] = common.check_target(
                pairs["1.5mm"]["mome_over_nnunet_end_to_end"], TARGETS["paper_k20_over_nnunet_1p5mm_end_to_end"],
                not args.quick, "paper-size MoME at K = 20 / one nnU-Net 3d_fullres pass at 1.5 mm, end to end"
                + ("" if not cpu else ", on the CPU") + quick)
        result = {
            **common.result_header(NAME, machine),
            "settings": {"device": args.device, "pairs": args.pairs, "rounds_3mm": args.rounds,
                         "rounds_1p5mm": args.rounds_paper, "quick": args.quick, "nnunet_python": python,
                         "process_settings": process_settings},
            "ct": ct,
            "peer": {
                "what": "nnU-Net v2 (nnunetv2) 3d_fullres, plans from nnU-Net's own ExperimentPlanner on a small "
                        "dataset of synthetic cases derived from the shared abdomen CT (its own labels, resampled "
                        "to the plan's spacing and cropped differently), random weights; predicted as "
                        "TotalSegmentator does (resample the CT to the network's spacing, nnUNetPredictor with "
                        "Gaussian blending, tile step 0.5, no mirroring, then the labels back onto the CT's grid)",
                "kind_to_the_peer": "linear SimpleITK resampling (TotalSegmentator: cubic), nnU-Net's single-process "
                                    "predict_from_files_sequential (no worker start-up), MoME's process settings",
            },
            "pairs": pairs,
            "targets": targets,
            "load_average": {"start": load_start, "end": common.load_average()},
            "total_s": round(time.perf_counter() - started, 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    common.write_result(out_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
