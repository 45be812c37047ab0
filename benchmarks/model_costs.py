#!/usr/bin/env python3
"""What one sliding-window batch of the paper-size networks costs, counted rather than timed:
floating-point operations and peak tensor memory, by prompt count K, windows per batch B and class
path (blocked at inference vs whole tensors as in training). No GPU needed.

    python benchmarks/model_costs.py          # results/model_costs.json

* **FLOPs**: ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions;
  element-wise work is not counted), per top-level part of the network.
* **Peak memory**: ``torch.distributed._tools.mem_tracker.MemTracker`` over one forward pass under
  bf16 autocast, with fake tensors (``FakeTensorMode``: shapes and dtypes, no arithmetic), so a batch
  of 96³ windows costs seconds. The CPU's autocast stands in for CUDA's; both run convolutions and
  matrix products in bf16 and normalisations and softmax in float32. It counts tensors only: a real
  GPU adds the caching allocator's slack and cuDNN workspaces (compare ``inference-paper-cuda.json``).

This is the model behind issue 13's GPU targets where no GPU is at hand: MoME's extra arithmetic
over the bare backbone is a few per cent, so its extra time on a GPU is memory traffic, which the
blocked class path bounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

NAME = "model_costs"
TEXT_DIM = 384
PATCH = 96


def flops(model, k: int) -> dict[str, Any]:
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    with FakeTensorMode(allow_non_fake_inputs=True), torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            model(torch.rand(1, 1, PATCH, PATCH, PATCH), torch.randn(k, TEXT_DIM))
    total = counter.get_total_flops()
    parts = {name.split(".", 1)[1]: sum(ops.values()) for name, ops in counter.get_flop_counts().items()
             if name.count(".") == 1}
    if not hasattr(model, "is_mome"):  # the bare backbone: one part
        return {"total_gflop": round(total / 1e9, 2)}
    # The blocked class computation is functions, not modules: what no submodule claims.
    parts["class computation (router, fusion, heads)"] = total - sum(parts.values())
    return {"total_gflop": round(total / 1e9, 2), "by_part_gflop": {n: round(v / 1e9, 3) for n, v in parts.items()}}


def peak_memory(model, batch: int, k: int) -> dict[str, Any]:
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    with FakeTensorMode(allow_non_fake_inputs=True):
        image, text = torch.rand(batch, 1, PATCH, PATCH, PATCH), torch.randn(k, TEXT_DIM)
        tracker = MemTracker()
        tracker.track_external(model, image, text)
        with tracker, torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            model(image, text)
    snapshot = next(iter(tracker.get_tracker_snapshot("peak").values()))
    return {str(getattr(kind, "value", kind)).lower(): value for kind, value in snapshot.items() if value}


def _image_only(backbone):
    """The bare backbone behind MoME's ``(image, text)`` call, as a module: MemTracker tracks modules,
    not functions."""
    import torch

    class ImageOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone

        def forward(self, image, text):
            return self.backbone(image)

    return ImageOnly().eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    started = time.perf_counter()
    load_start = common.load_average()
    machine = common.machine_info("cpu")
    import torch

    from mome.model import MoME, MoMEConfig
    from mome.model.backbone import MoMESwinUNETR

    torch.manual_seed(0)
    models = {
        "mome": MoME(MoMEConfig.from_size("paper", text_dim=TEXT_DIM)).eval(),
        "universal": MoME(MoMEConfig.from_size("paper", text_dim=TEXT_DIM, variant="universal")).eval(),
    }
    backbone = _image_only(MoMESwinUNETR(1, 48).eval())
    results: dict[str, Any] = {"flops_per_window": {}, "peak_memory_bytes": {}}
    for variant, model in models.items():
        for k in (1, 5, 20):
            results["flops_per_window"][f"{variant} K={k}"] = flops(model, k)
            common.log(f"FLOPs {variant} K={k}: {results['flops_per_window'][f'{variant} K={k}']['total_gflop']} G")
    results["flops_per_window"]["backbone"] = flops(backbone, 1)
    for batch in (1, 8):
        for k in (1, 5, 20):
            for path in ("blocked", "whole"):
                models["mome"].blocked_inference = path == "blocked"
                key = f"mome B={batch} K={k} {path}"
                results["peak_memory_bytes"][key] = peak_memory(models["mome"], batch, k)
                common.log(f"peak {key}: {results['peak_memory_bytes'][key]['total'] / 2**30:.2f} GiB")
        results["peak_memory_bytes"][f"backbone B={batch}"] = peak_memory(backbone, batch, 1)
    models["mome"].blocked_inference = True
    base = results["flops_per_window"]["backbone"]["total_gflop"]
    results["mome_over_backbone_flops"] = {
        k: round(results["flops_per_window"][f"mome K={k}"]["total_gflop"] / base, 4) for k in (1, 5, 20)}
    result = {
        **common.result_header(NAME, machine),
        "what": f"paper size (feature size 48), {PATCH}³ windows; FLOPs per window (FlopCounterMode: matrix products "
                "and convolutions, 2 per multiply-add), peak tensor memory per forward pass under bf16 autocast "
                "with fake tensors (MemTracker; CPU autocast standing in for CUDA's; no allocator slack or "
                "workspaces). 'blocked' is the inference class path, 'whole' the training one without autograd",
        **results,
        "load_average": {"start": load_start, "end": common.load_average()},
        "total_s": round(time.perf_counter() - started, 1),
    }
    out_path = args.out or common.RESULTS_DIR / f"{NAME}.json"
    common.write_result(out_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
