"""Evaluate a model package on a manifest split: Dice, surface Dice (NSD) and HD95 per class.

The result is plain JSON: a distance that does not exist (HD95 when nothing was predicted) is
``null`` with a note saying why, never ``Infinity``, which JSON does not allow.
"""

from __future__ import annotations

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance, compute_surface_dice

from ..inference.sliding import FAST_OVERLAP
from ..package import ModelPackage
from ..progress import NullProgress, Progress
from ..vocabulary import load_vocabulary
from .data import prepare_case, validate_manifest
from .manifest import Manifest, ManifestError
from .validation import dice, predict_case


def evaluate_package(package: ModelPackage, manifest: Manifest, split: str = "val", device: str = "cpu",
                     nsd_tolerance_mm: float = 2.0, progress: Progress | None = None,
                     overlap: float = FAST_OVERLAP) -> dict:
    """Metrics on the model grid for every (case, class) that the case annotates and contains.

    ``overlap``: of the sliding windows; by default that of ``mome segment --fast`` (0.25), so the
    figures describe the fast mode (its full mode overlaps by 0.5).

    Returns ``{"per_class": {key: {"dice", "dice_sd", "nsd", "nsd_sd", "hd95_mm", "cases"}}, "per_case": [...],
    ...}``: means over the cases that annotate the class, their standard deviation (None for one case).
    Classes the model does not know are reported under ``skipped_classes``.
    """
    progress = progress or NullProgress()
    cases = manifest.cases(split)
    if not cases:
        raise ValueError(f"the manifest has no '{split}' cases to evaluate; mark some cases with split: {split}")
    vocab = load_vocabulary()
    # Every problem of the evaluated cases at once, before the model is built (as training does).
    problems = validate_manifest(manifest, vocab, split=split)
    if problems:
        raise ManifestError(problems, what="evaluation data", outcome="nothing was evaluated")
    annotated = list(dict.fromkeys(k for case in cases for k in case.classes))
    known = [k for k in annotated if k in package.class_keys]
    skipped = [k for k in annotated if k not in package.class_keys]
    if not known:
        raise ValueError(
            f"model {package.info.name} {package.info.version} has none of the classes the '{split}' cases annotate "
            f"({', '.join(annotated) or 'none'}); its classes: {', '.join(package.class_keys)}"
        )
    parents = {k: list(vocab.get(k).parent) for k in known if k in vocab}
    pre = package.preprocessing
    model = package.build_model(device)
    embeddings = package.embeddings_for(known)
    spacing = np.array(pre.spacing, dtype=float)  # prepared arrays are in (x, y, z) order
    per_case, collected = [], {}
    for n, case in enumerate(cases):
        progress.update("evaluate", n / len(cases), f"case {n + 1}/{len(cases)}")
        prepared = prepare_case(case, known, pre.spacing, pre.hu_window, parents=parents)
        pred = predict_case(model, prepared, embeddings, pre.patch_size, torch.device(device), overlap)
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
            "dice_sd": _sd([m["dice"] for m in ms]),
            "nsd": float(np.mean([m["nsd"] for m in ms])),
            "nsd_sd": _sd([m["nsd"] for m in ms]),
            **_mean_hd95(ms),
            "cases": len(ms),
        }
        for key, ms in collected.items()
    }
    return {
        "model": f"{package.info.name} {package.info.version}",
        "split": split,
        "grid": {"spacing_mm": list(pre.spacing), "note": "metrics on the model grid"},
        "sliding_window": {"patch_size": [int(p) for p in pre.patch_size], "overlap": overlap},
        "nsd_tolerance_mm": nsd_tolerance_mm,
        "per_class": per_class,
        "mean_dice": float(np.mean([v["dice"] for v in per_class.values()])) if per_class else None,
        "per_case": per_case,
        "skipped_classes": skipped,
    }


NOTHING_PREDICTED = "nothing was predicted, so there is no surface distance"


def _sd(values: list[float]) -> float | None:
    """Sample standard deviation across cases (ddof 1); None for a single case, where there is none."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _mean_hd95(ms: list[dict]) -> dict:
    """Mean HD95 over cases, or null with the reason when a case has none."""
    if any(m["hd95_mm"] is None for m in ms):
        return {"hd95_mm": None, "hd95_note": f"{NOTHING_PREDICTED} in at least one case"}
    return {"hd95_mm": float(np.mean([m["hd95_mm"] for m in ms]))}


def _metrics(pred: np.ndarray, truth: np.ndarray, spacing: np.ndarray, tol: float) -> dict:
    d = dice(pred, truth)
    if not pred.any():
        return {"dice": d, "nsd": 0.0, "hd95_mm": None, "hd95_note": NOTHING_PREDICTED}
    p = torch.as_tensor(pred[None, None])
    t = torch.as_tensor(truth[None, None])
    nsd = compute_surface_dice(p, t, class_thresholds=[tol], include_background=True, spacing=spacing.tolist())
    hd = float(compute_hausdorff_distance(p, t, include_background=True, percentile=95,
                                          spacing=spacing.tolist()).item())
    if not np.isfinite(hd):
        return {"dice": d, "nsd": float(nsd.item()), "hd95_mm": None, "hd95_note": "no finite surface distance"}
    return {"dice": d, "nsd": float(nsd.item()), "hd95_mm": hd}
