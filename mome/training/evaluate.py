"""Evaluate a model package on a manifest split: Dice, surface Dice (NSD) and HD95 per class."""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from ..package import ModelPackage
from ..progress import NullProgress, Progress
from ..vocabulary import load_vocabulary
from .data import prepare_case
from .manifest import Manifest
from .validation import dice, predict_case


def evaluate_package(package: ModelPackage, manifest: Manifest, split: str = "val", device: str = "cpu",
                     nsd_tolerance_mm: float = 2.0, progress: Progress | None = None) -> dict:
    """Metrics on the model grid for every (case, class) that the case annotates and contains.

    Returns ``{"per_class": {key: {"dice", "nsd", "hd95_mm", "cases"}}, "per_case": [...], ...}``.
    Classes the model does not know are reported under ``skipped_classes``.
    """
    progress = progress or NullProgress()
    cases = manifest.cases(split)
    if not cases:
        raise ValueError(f"the manifest has no '{split}' cases to evaluate; mark some cases with split: {split}")
    vocab = load_vocabulary()
    known = [k for k in manifest.classes if k in package.class_keys]
    skipped = [k for k in manifest.classes if k not in package.class_keys]
    parents = {k: list(vocab.get(k).parent) for k in known if k in vocab}
    pre = package.preprocessing
    model = package.build_model(device)
    embeddings = package.embeddings_for(known)
    spacing = np.array(pre.spacing, dtype=float)  # prepared arrays are in (x, y, z) order
    per_case, collected = [], {}
    for n, case in enumerate(cases):
        progress.update("evaluate", n / len(cases), f"case {n + 1}/{len(cases)}")
        prepared = prepare_case(case, known, pre.spacing, pre.hu_window, parents=parents)
        pred = predict_case(model, prepared, embeddings, pre.patch_size, torch.device(device))
        row = {"case": f"{case.dataset}/{case.id}", "classes": {}}
        for i, key in enumerate(known):
            truth = prepared.target[i].astype(bool)
            if not prepared.labelled[i] or not truth.any():
                continue
            m = _metrics(pred[i], truth, spacing, nsd_tolerance_mm)
            row["classes"][key] = m
            collected.setdefault(key, []).append(m)
        per_case.append(row)
    progress.update("evaluate", 1.0, "done")
    per_class = {
        key: {
            "dice": float(np.mean([m["dice"] for m in ms])),
            "nsd": float(np.mean([m["nsd"] for m in ms])),
            "hd95_mm": float(np.mean([m["hd95_mm"] for m in ms])) if all(np.isfinite(m["hd95_mm"]) for m in ms)
            else None,
            "cases": len(ms),
        }
        for key, ms in collected.items()
    }
    return {
        "model": f"{package.info.name} {package.info.version}",
        "split": split,
        "grid": {"spacing_mm": list(pre.spacing), "note": "metrics on the model grid"},
        "nsd_tolerance_mm": nsd_tolerance_mm,
        "per_class": per_class,
        "mean_dice": float(np.mean([v["dice"] for v in per_class.values()])) if per_class else None,
        "per_case": per_case,
        "skipped_classes": skipped,
    }


def _metrics(pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray, tol: float) -> dict:
    d = dice(pred, truth)
    if not pred.any():
        return {"dice": d, "nsd": 0.0, "hd95_mm": float("inf")}
    p = torch.as_tensor(pred[None, None])
    t = torch.as_tensor(truth[None, None])
    nsd = compute_surface_dice(p, t, class_thresholds=[tol], include_background=True, spacing=spacing.tolist())
    hd = compute_hausdorff_distance(p, t, include_background=True, percentile=95, spacing=spacing.tolist())
    return {"dice": d, "nsd": float(nsd.item()), "hd95_mm": float(hd.item())}
