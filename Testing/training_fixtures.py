"""Small on-disk datasets for training tests (synthetic geometry or real crops from ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from mome.model import MoME, MoMEConfig
from mome.package import ModelPackage, PackageClass, PackageInfo, Preprocessing
from mome.vocabulary import load_vocabulary


def write_phantom_case(folder: Path, name: str, size=(48, 48, 48), spacing=(3.0, 3.0, 3.0), seed=0):
    """A CT-like phantom: body at 40 HU in air, a 'liver' ellipsoid at 120 HU, a 'spleen' blob at 80 HU.
    Label map values: 1 liver, 2 spleen."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[: size[2], : size[1], : size[0]]
    c = np.array(size[::-1]) / 2
    body = ((z - c[0]) / (0.45 * size[2])) ** 2 + ((y - c[1]) / (0.4 * size[1])) ** 2 + ((x - c[2]) / (0.45 * size[0])) ** 2 < 1
    liver = ((z - c[0]) / 8) ** 2 + ((y - c[1]) / 7) ** 2 + ((x - c[2] + 6) / 9) ** 2 < 1
    spleen = ((z - c[0]) / 5) ** 2 + ((y - c[1]) / 5) ** 2 + ((x - c[2] - 10) / 4) ** 2 < 1
    hu = np.full(z.shape, -1000.0) + rng.normal(0, 5, z.shape)
    hu[body] = 40
    hu[liver] = 120
    hu[spleen] = 80
    labels = np.zeros(z.shape, np.uint8)
    labels[liver] = 1
    labels[spleen] = 2
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, arr in (("image", hu.astype(np.int16)), ("labels", labels)):
        img = sitk.GetImageFromArray(arr)
        img.SetSpacing(spacing)
        path = folder / f"{name}_{kind}.nii.gz"
        sitk.WriteImage(img, str(path))
        paths[kind] = path
    return paths


def phantom_manifest(folder: Path, n_train=1, n_val=1) -> Path:
    cases = []
    for i in range(n_train + n_val):
        p = write_phantom_case(folder, f"case{i}", seed=i)
        cases.append({"id": f"case{i}", "image": p["image"].name, "labels": p["labels"].name,
                      "split": "train" if i < n_train else "val"})
    manifest = {"name": "phantoms", "datasets": [{"name": "phantom", "label_map": {"1": "liver", "2": "spleen"},
                                                   "cases": cases}]}
    path = folder / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def base_package(folder: Path, patch=(64, 64, 64)) -> Path:
    """A tiny base model whose package carries liver/spleen embeddings (no text encoder needed); runs
    fine-tuned from it train at its 3 mm grid and ``patch``."""
    torch.manual_seed(0)
    vocab = load_vocabulary()
    classes = [PackageClass.from_structure(vocab.get(k)) for k in ("liver", "spleen")]
    model = MoME(MoMEConfig.from_size("tiny", text_dim=16))
    pre = Preprocessing(spacing=(3.0, 3.0, 3.0), patch_size=tuple(patch))
    package = ModelPackage.from_model(model, PackageInfo("base", "1.0.0"), pre, classes, torch.randn(2, 16))
    return package.save(folder / "base")


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the event files in ``folder``: [(step, value), …], as TensorBoard reads them."""
    from tensorboard.backend.event_processing import event_accumulator

    acc = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
