#!/usr/bin/env python3
"""Training benchmark: step throughput and peak memory of MoME, the Universal Model baseline and the
bare backbone, same size, one run. Writes one JSON file per run.

    python benchmarks/training.py --device cpu                # tiny, 64³ crops
    python benchmarks/training.py --device cuda               # tiny and paper, 96³ crops, bf16 AMP
    python benchmarks/training.py --quick                     # smoke test

Each step is a real optimisation step on a random ``1×1×P³`` crop with K labelled classes: forward
(bf16 autocast on CUDA, fp32 on CPU), ``MaskedBCEDiceLoss`` (as the trainer uses it), backward,
gradient clipping at 1.0, AdamW. The three networks:

* ``mome``      — MoME (experts, text-guided router, dynamic heads) with K random text embeddings;
* ``universal`` — the CLIP-Driven Universal Model baseline (dynamic heads on the last decoder stage);
* ``backbone``  — the bare Swin UNETR plus a plain 1×1×1 conv head with K outputs, same loss.

**Throughput**: all three are built in this process and stepped in turn, in rotating order, after
``--warmup`` steps each, so that a load change on a shared machine hits all of them alike; steps/s is
1 / the median step time. Crops are generated on the device beforehand (data loading is not timed).
**Peak memory**: each variant again on its own — a fresh process per variant on the CPU (its
peak RSS, VmHWM), and on CUDA one after the other in this process with the peak statistics
reset and everything freed in between (``torch.cuda.max_memory_allocated``) — for two steps (the
first allocates AdamW's state).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402  (also puts the repository on sys.path)

NAME = "training"
TEXT_DIM = 384
VARIANTS = ("backbone", "universal", "mome")
MEMORY_STEPS = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--size", action="append", choices=("tiny", "small", "paper"),
                   help="network size; repeatable (default: tiny on CPU, tiny and paper on CUDA)")
    p.add_argument("--patch", type=int, default=None, help="crop edge P (default: 64 on CPU, 96 on CUDA)")
    p.add_argument("--classes", type=int, default=5, help="K labelled classes per crop (default 5)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per variant (default: 4 on CPU, 15 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per variant first (default: 1 on CPU, 3 on CUDA)")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny, 64³ crops, 2 steps after 1 warm-up step")
    p.add_argument("--block-optional-imports", action="store_true",
                   help="allow only the GPU machine's packages to be imported, to prove nothing else is needed")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default: benchmarks/results/training-<device>[-quick].json)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cpu = args.device == "cpu"
    if args.patch is None:
        args.patch = 64 if (args.quick or cpu) else 96
    if args.steps is None:
        args.steps = 2 if args.quick else (4 if cpu else 15)
    if args.warmup is None:
        args.warmup = 1 if (args.quick or cpu) else 3
    if not args.size:
        args.size = ["tiny"] if (args.quick or cpu) else ["tiny", "paper"]
    args.size = list(dict.fromkeys(args.size))
    if args.patch % 32 or args.patch < 64:
        p.error("--patch must be a multiple of 32 (Swin UNETR), at least 64 (its 1/32 bottleneck is normalised per instance)")
    if args.steps < 1 or args.warmup < 0 or args.classes < 1:
        p.error("--steps and --classes must be at least 1, --warmup at least 0")
    return args


# ---------------------------------------------------------------------------- one variant
class Variant:
    """A network, its optimiser and one training step on a given crop."""

    def __init__(self, variant: str, size: str, classes: int, device):
        import torch
        from torch import nn

        from mome.model import MoME, MoMEConfig
        from mome.model.backbone import MoMESwinUNETR
        from mome.training.loss import MaskedBCEDiceLoss

        torch.manual_seed(0)
        self.name = variant
        self.device = device
        config = MoMEConfig.from_size(size, variant="mome" if variant == "backbone" else variant, text_dim=TEXT_DIM)
        if variant == "backbone":
            backbone = MoMESwinUNETR(config.in_channels, config.feature_size)
            head = nn.Conv3d(config.stage_channels("out"), classes, 1)

            class BackboneWithHead(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.backbone, self.head = backbone, head

                def forward(self, image, text):
                    return self.head(self.backbone(image)[-1])

            self.model = BackboneWithHead()
        else:
            self.model = MoME(config)
        self.model.to(device).train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4, weight_decay=1e-5)
        self.loss = MaskedBCEDiceLoss()
        self.amp = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else (
            torch.float16 if device.type == "cuda" else None)
        # fp16 would need a GradScaler; every GPU this benchmark targets has bf16.
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == torch.float16)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.params)

    def step(self, batch: dict[str, Any]) -> float:
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            logits = self.model(batch["image"], batch["text"])
        loss = self.loss(logits.float(), batch["target"], batch["labelled"])
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())


def make_batches(patch: int, classes: int, device, count: int = 2) -> list[dict[str, Any]]:
    """Random 1×1×P³ crops (values in [0, 1], as preprocessing gives) with K labelled binary targets."""
    import torch

    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        batches.append({
            "image": torch.rand(1, 1, patch, patch, patch, generator=generator).to(device),
            "target": (torch.rand(1, classes, patch, patch, patch, generator=generator) < 0.2).float().to(device),
            "labelled": torch.ones(1, classes, dtype=torch.bool, device=device),
            "text": torch.randn(classes, TEXT_DIM, generator=generator).to(device),
        })
    return batches


def memory_of(variant: str, size: str, patch: int, classes: int, device) -> dict[str, Any]:
    """Peak memory of ``MEMORY_STEPS`` training steps of one variant (run alone)."""
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    batches = make_batches(patch, classes, device)
    runner = Variant(variant, size, classes, device)
    for i in range(MEMORY_STEPS):
        runner.step(batches[i % len(batches)])
    common.synchronize(device)
    out: dict[str, Any] = {"peak_rss_bytes": common.peak_rss_bytes()}
    if device.type == "cuda":
        out["cuda_max_memory_allocated_bytes"] = int(torch.cuda.max_memory_allocated() - base)
        out["cuda_max_memory_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
    del runner, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def memory_child(job: dict[str, Any]) -> dict[str, Any]:
    import torch

    device = torch.device(job["device"])
    out = memory_of(job["variant"], job["size"], job["patch"], job["classes"], device)
    out["unexpected_imports"] = common.unexpected_third_party()
    return out


# ---------------------------------------------------------------------------- one size
def benchmark_size(args: argparse.Namespace, size: str, device) -> dict[str, Any]:
    import torch

    batches = make_batches(args.patch, args.classes, device)
    runners = {v: Variant(v, size, args.classes, device) for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    losses: dict[str, float] = {}
    for v, runner in runners.items():
        for i in range(args.warmup):
            runner.step(batches[i % len(batches)])
    common.synchronize(device)
    for step in range(args.steps):
        order = VARIANTS[step % 3:] + VARIANTS[:step % 3]
        for v in order:
            seconds, loss = common.timed(lambda: runners[v].step(batches[step % len(batches)]), device)
            times[v].append(seconds)
            losses[v] = loss
        common.log(f"training {size} step {step + 1}/{args.steps}: "
                   + ", ".join(f"{v} {times[v][-1]:.3f} s" for v in VARIANTS))
    params = {v: r.parameter_count() for v, r in runners.items()}
    del runners, batches
    if device.type == "cuda":
        torch.cuda.empty_cache()

    # Peak memory, each variant alone.
    memory: dict[str, Any] = {}
    script = Path(__file__).resolve()
    for v in VARIANTS:
        if device.type == "cuda":
            memory[v] = memory_of(v, size, args.patch, args.classes, device)
            memory[v].pop("peak_rss_bytes")  # this process's RSS is not one variant's
        else:
            job = {"name": f"memory {size} {v}", "variant": v, "size": size, "patch": args.patch,
                   "classes": args.classes, "device": args.device}
            memory[v] = common.run_child(script, job)
        common.log(f"memory {size} {v}: " + ", ".join(f"{k} {val / 2**20:.0f} MiB" for k, val in memory[v].items()
                                                     if k.endswith("bytes")))

    medians = {v: common.median(times[v]) for v in VARIANTS}
    return {
        "feature_size": {"tiny": 12, "small": 24, "paper": 48}[size],
        "parameters": params,
        "step_s": {v: common.summary(times[v]) for v in VARIANTS},
        "steps_per_s": {v: round(1 / medians[v], 3) for v in VARIANTS},
        "mome_over_backbone_step_time": common.ratio(medians["mome"], medians["backbone"]),
        "universal_over_backbone_step_time": common.ratio(medians["universal"], medians["backbone"]),
        "mome_over_universal_step_time": common.ratio(medians["mome"], medians["universal"]),
        "last_loss": {v: round(x, 4) for v, x in losses.items()},
        "memory": memory,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.block_optional_imports(args.block_optional_imports)
    if args.child:
        common.emit_child_result(memory_child(json.loads(args.child)))
        return 0

    started = time.perf_counter()
    load_start = common.load_average()
    device = common.resolve_device(args.device)
    machine = common.machine_info(args.device)
    out_path = args.out or common.default_out(NAME, args.device, args.quick)
    sizes = {}
    for size in args.size:
        sizes[size] = benchmark_size(args, size, device)
    result = {
        **common.result_header(NAME, machine),
        "settings": {
            "device": args.device, "sizes": args.size, "patch": args.patch, "batch": 1, "classes_k": args.classes,
            "warmup_steps": args.warmup, "timed_steps": args.steps, "memory_steps": MEMORY_STEPS,
            "optimizer": "AdamW lr 1e-4 wd 1e-5, grad clip 1.0",
            "loss": "mome.training.loss.MaskedBCEDiceLoss, all K classes labelled",
            "amp": "bf16 autocast" if args.device == "cuda" else "off (fp32)",
            "data": "random crops generated on the device beforehand (not timed); random binary targets",
            "memory_measured": ("one fresh process per variant: " + common.PEAK_RSS_SOURCE if args.device == "cpu" else
                                "per variant in turn in one process: torch.cuda.max_memory_allocated above what "
                                "was allocated before it (everything else freed)"),
            "quick": args.quick, "optional_imports_blocked": common.optional_imports_blocked(),
        },
        "sizes": sizes,
        "unexpected_imports": common.unexpected_third_party(),
        "load_average": {"start": load_start, "end": common.load_average()},
        "total_s": round(time.perf_counter() - started, 1),
    }
    common.write_json(out_path, result)
    common.log(f"wrote {out_path} ({result['total_s']} s)")
    for size, data in sizes.items():
        common.log(f"  {size}: steps/s {data['steps_per_s']}, MoME/backbone {data['mome_over_backbone_step_time']}, "
                   f"universal/backbone {data['universal_over_backbone_step_time']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
