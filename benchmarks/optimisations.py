#!/usr/bin/env python3
"""Before and after, side by side in one run: what each of issue 13's optimisations changes.

    python benchmarks/optimisations.py --device cpu     # results/optimisations-cpu.json
    python benchmarks/optimisations.py --device cuda

1. **Network** (same process, same windows, configurations interleaved): one forward pass of MoME
   per configuration — ``before`` (MONAI's explicit window attention, router/fusion/heads on whole
   tensors, as before issue 13), ``fused_attention`` only, ``blocked_classes`` only, and ``after``
   (both, the default now). mome-mini's size (feature size 12, 64³) at K = 5 and 20, and the paper
   size (48, 96³) at K = 20. Random weights; speed does not depend on their values.
2. **Thread waiting** (fresh processes, alternating): the same mome-mini forward passes with
   OpenMP's default wait policy and with ``OMP_WAIT_POLICY=PASSIVE`` (``mome.runtime``).
3. **MONAI's import** (fresh processes, alternating): the segmentation path's MONAI modules imported
   plainly and with ``mome.runtime.import_monai_lean``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

NAME = "optimisations"
TEXT_DIM = 384
CONFIGS = {  # name → (fused attention, blocked class path)
    "before": (False, False),
    "fused_attention": (True, False),
    "blocked_classes": (False, True),
    "after": (True, True),
}

FORWARD_CHILD = """
import json, sys, time
from mome.runtime import tune_allocator
tune_allocator()
import torch
from mome.model import MoME, MoMEConfig
torch.manual_seed(0)
model = MoME(MoMEConfig(feature_size=12, text_dim=384)).eval()
x, text = torch.rand(1, 1, 64, 64, 64), torch.randn(5, 384)
times = []
with torch.inference_mode():
    model(x, text)
    for _ in range(int(sys.argv[1])):
        start = time.perf_counter()
        model(x, text)
        times.append(time.perf_counter() - start)
print(json.dumps(times))
"""

IMPORT_CHILD = """
import json, sys, time
start = time.perf_counter()
import torch
torch_s = time.perf_counter() - start
start = time.perf_counter()
if sys.argv[1] == "lean":
    from mome.runtime import import_monai_lean
    assert import_monai_lean()
else:
    import monai.networks.nets.swin_unetr, monai.inferers.utils, monai.data.utils
print(json.dumps({"torch_s": torch_s, "monai_s": time.perf_counter() - start}))
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--repeats", type=int, default=None, help="rounds of each measurement (default: CPU 5, CUDA 20)")
    p.add_argument("--paper-repeats", type=int, default=None, help="rounds at the paper size (default: CPU 3, CUDA 20)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 rounds, no paper size")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    cpu = args.device == "cpu"
    args.repeats = args.repeats or (2 if args.quick else 5 if cpu else 20)
    args.paper_repeats = 0 if args.quick else (args.paper_repeats or (3 if cpu else 20))
    return args


def set_config(model, fused: bool, blocked: bool) -> None:
    for module in model.modules():
        if hasattr(module, "use_flash_attention"):
            module.use_flash_attention = fused
    model.blocked_inference = blocked


def network(device, size: str, patch: int, k: int, repeats: int, batch: int) -> dict[str, Any]:
    import torch

    from mome.inference.device import autocast_for
    from mome.model import MoME, MoMEConfig

    torch.manual_seed(0)
    model = MoME(MoMEConfig.from_size(size, text_dim=TEXT_DIM)).to(device).eval()
    x = torch.rand(batch, 1, patch, patch, patch, device=device)
    text = torch.randn(k, TEXT_DIM, device=device)
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    names = list(CONFIGS)
    with torch.inference_mode(), autocast_for(device):
        for config in names:  # warm-up: kernels, caches, the allocator
            set_config(model, *CONFIGS[config])
            model(x, text)
        for r in range(repeats):
            for config in names[r % len(names):] + names[:r % len(names)]:
                set_config(model, *CONFIGS[config])
                seconds, _ = common.timed(lambda: model(x, text), device)
                times[config].append(seconds)
        common.log(f"network {size} {patch}³ K={k}: " + ", ".join(
            f"{c} {common.median(t):.3f} s" for c, t in times.items()))
    medians = {c: common.median(t) for c, t in times.items()}
    return {
        "size": size, "patch": patch, "k": k, "windows_per_pass": batch,
        "seconds": {c: common.summary(t) for c, t in times.items()},
        "speedup_after_vs_before": common.ratio(medians["before"], medians["after"]),
        "speedup_fused_attention_alone": common.ratio(medians["before"], medians["fused_attention"]),
        "speedup_blocked_classes_alone": common.ratio(medians["before"], medians["blocked_classes"]),
    }


def alternating_children(code: str, variants: dict[str, dict[str, str]], args_for: dict[str, list[str]],
                         rounds: int) -> dict[str, list[Any]]:
    """Run ``code`` in fresh interpreters, variants alternating round by round."""
    out: dict[str, list[Any]] = {v: [] for v in variants}
    names = list(variants)
    for r in range(rounds):
        for variant in (names if r % 2 == 0 else names[::-1]):
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            env.update(variants[variant])
            done = subprocess.run([sys.executable, "-c", code, *args_for[variant]], capture_output=True, text=True,
                                  env=env, cwd=common.REPO, check=True)
            out[variant].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mome.runtime import prefer_passive_waiting, tune_allocator

    # The network comparison runs under the CLI's process settings (before torch is imported).
    process_settings = {"omp_wait_policy_set": prefer_passive_waiting(), "allocator_tuned": tune_allocator()}
    started = time.perf_counter()
    load_start = common.load_average()
    machine = common.machine_info(args.device)
    device = common.resolve_device(args.device)
    batch = 1 if args.device == "cpu" else 8

    results: dict[str, Any] = {"network": [
        network(device, "tiny", 64, 5, args.repeats, batch),
        network(device, "tiny", 64, 20, args.repeats, batch),
    ]}
    if args.paper_repeats:
        results["network"].append(network(device, "paper", 96, 20, args.paper_repeats, batch))

    if args.device == "cpu":  # the wait policy and the import matter where the CPU does the work
        waiting = alternating_children(FORWARD_CHILD, {"default": {}, "passive": {"OMP_WAIT_POLICY": "PASSIVE"}},
                                       {"default": ["3"], "passive": ["3"]}, max(2, args.repeats // 2 * 2))
        per = {v: [t for run in runs for t in run] for v, runs in waiting.items()}
        results["thread_waiting"] = {
            "what": "mome-mini-size forward passes (64³, K = 5) in fresh processes, 3 per process after a warm-up, "
                    "OpenMP's default wait policy vs OMP_WAIT_POLICY=PASSIVE, processes alternating",
            "seconds": {v: common.summary(t) for v, t in per.items()},
            "speedup_passive": common.ratio(common.median(per["default"]), common.median(per["passive"])),
        }
        common.log(f"thread waiting: {results['thread_waiting']['speedup_passive']}× with PASSIVE")
    imports = alternating_children(IMPORT_CHILD, {"plain": {}, "lean": {}}, {"plain": ["plain"], "lean": ["lean"]},
                                   max(2, args.repeats // 2 * 2))
    results["monai_import"] = {
        "what": "fresh processes: import torch, then MONAI's Swin UNETR, sliding window and data utilities, plainly or "
                "with mome.runtime.import_monai_lean; alternating",
        **{f"{v}_monai_s": common.summary([r["monai_s"] for r in runs], 3) for v, runs in imports.items()},
        "torch_s": common.summary([r["torch_s"] for runs in imports.values() for r in runs], 3),
        "speedup_lean": common.ratio(common.median([r["monai_s"] for r in imports["plain"]]),
                                     common.median([r["monai_s"] for r in imports["lean"]])),
    }
    common.log(f"MONAI import: {results['monai_import']['speedup_lean']}× faster lean")

    result = {
        **common.result_header(NAME, machine),
        "settings": {"device": args.device, "repeats": args.repeats, "paper_repeats": args.paper_repeats,
                     "windows_per_forward": batch, "quick": args.quick, "process_settings": process_settings},
        "configs": {c: {"fused_attention": f, "blocked_classes": b} for c, (f, b) in CONFIGS.items()},
        **results,
        "load_average": {"start": load_start, "end": common.load_average()},
        "total_s": round(time.perf_counter() - started, 1),
    }
    out_path = args.out or common.default_out(NAME, args.device, args.quick)
    common.write_result(out_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
