"""Turn manifest cases into training arrays on the model grid (this is the part that needs SimpleITK).

Each prepared case holds the image scaled to [0, 1] (``1×X×Y×Z``, MONAI's layout), one binary channel per class
of the training run (``K×X×Y×Z``) and which of those K classes the case annotates. Classes it does not
annotate are *unknown* (their channel is empty and masked out of the loss), never background.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..imaging import AIR_HU, Grid, model_grid, network_array, resample, same_grid, scale_intensity
from ..vocabulary import Vocabulary
from .manifest import Case, ManifestError, Manifest
from .prepared import PreparedCase


#: Labels from other tools may carry a little more header rounding than MoME's own outputs.
GRID_TOLERANCE = 1e-4


def read_header(path: Path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def case_masks(case: Case, image: sitk.Image, vocabulary: Vocabulary | None = None) -> dict[str, sitk.Image]:
    """Binary masks (uint8, on the image grid) for every class the case annotates."""
    masks: dict[str, sitk.Image] = {}
    if case.labels is not None:
        labels = sitk.ReadImage(str(case.labels))
        arr = sitk.GetArrayViewFromImage(labels)
        for value, key in case.label_map.items():
            if key is None:
                continue
            m = (arr == value).astype(np.uint8)
            if key in masks:
                m |= sitk.GetArrayFromImage(masks[key])
            img = sitk.GetImageFromArray(m)
            img.CopyInformation(labels)
            masks[key] = img
    for key, path in case.masks.items():
        m = sitk.ReadImage(str(path))
        binary = sitk.Cast(m > 0, sitk.sitkUInt8)
        masks[key] = binary
    if case.seg_nrrd is not None:
        masks.update(_seg_nrrd_masks(case.seg_nrrd, image, vocabulary))
    return masks


def _seg_nrrd_masks(path: Path, image: sitk.Image, vocabulary: Vocabulary | None) -> dict[str, sitk.Image]:
    from ..io import read_seg_nrrd
    from ..vocabulary import load_vocabulary
    from .segment_mapping import segment_class_key

    vocabulary = vocabulary or load_vocabulary()
    segments, arrays, grid = read_seg_nrrd(path)
    reference = grid.empty_image()
    out = {}
    for seg, arr in zip(segments, arrays):
        key = segment_class_key(seg, vocabulary)
        if key is None:
            continue
        img = sitk.GetImageFromArray(arr.astype(np.uint8))
        img.CopyInformation(reference)
        if not same_grid(img, image, GRID_TOLERANCE):
            img = resample(img, image, "nearest")
        out[key] = img
    return out


def crop_roi(image: sitk.Image, roi: dict[str, tuple[int, int]]) -> sitk.Image:
    """Index-range crop; SimpleITK slicing keeps the physical placement of the kept voxels."""
    bounds = [roi.get(axis, (0, size)) for axis, size in zip("xyz", image.GetSize())]
    return image[bounds[0][0]:bounds[0][1], bounds[1][0]:bounds[1][1], bounds[2][0]:bounds[2][1]]


def prepare_case(
    case: Case,
    classes: list[str],
    spacing,
    hu_window,
    orientation: str = "RAS",
    parents: dict[str, list[str]] | None = None,
) -> PreparedCase:
    """Load, reorient and resample a case to the model grid; build its K-channel target.

    The grid, resampling, intensity scaling and array layout are ``mome.imaging``'s, as in inference
    (``mome.inference.preprocess``), so the network sees the same kind of input in training and in use.
    """
    image = sitk.ReadImage(str(case.image), sitk.sitkFloat32)
    masks = case_masks(case, image)
    for key, mask in masks.items():
        if not same_grid(mask, image, GRID_TOLERANCE):
            raise ManifestError([f"{case.dataset}/{case.id}: {key} mask grid differs from the image grid"])
    if case.roi:
        image = crop_roi(image, case.roi)
        masks = {k: crop_roi(m, case.roi) for k, m in masks.items()}
    grid = model_grid(Grid.of(image), spacing, orientation)
    image_grid = resample(image, grid, "linear", AIR_HU, sitk.sitkFloat32)
    index = {k: i for i, k in enumerate(classes)}
    target = np.zeros((len(classes), *grid.size), np.uint8)
    labelled = np.zeros(len(classes), bool)
    for key, mask in masks.items():
        if key not in index:
            continue
        # Linear interpolation of the binary mask, thresholded at 0.5: smoother than nearest.
        resampled = resample(sitk.Cast(mask, sitk.sitkFloat32), grid, "linear", 0.0)
        target[index[key]] = network_array(resampled) >= 0.5
        labelled[index[key]] = True
    # A tumour voxel is also a voxel of its organ (the Universal Model's convention).
    for key, organs in (parents or {}).items():
        if key in index and labelled[index[key]]:
            for organ in organs:
                if organ in index and labelled[index[organ]]:
                    target[index[organ]] |= target[index[key]]
    hu = network_array(image_grid)
    image_array = np.ascontiguousarray(scale_intensity(hu, hu_window)[None])
    return PreparedCase(case.id, case.dataset, image_array, target, labelled)


def validate_manifest(manifest: Manifest, vocabulary: Vocabulary, model_classes: list[str] | None = None,
                      split: str | None = None) -> list[str]:
    """Every problem that would stop or silently spoil training, found before it starts; with
    ``split``, the problems of that split's cases only (what an evaluation of it reads)."""
    problems: list[str] = []
    for case in manifest.cases(split):
        where = f"{case.dataset}/{case.id}"
        files = [("image", case.image), ("labels", case.labels), ("seg.nrrd", case.seg_nrrd)]
        files += [(f"mask '{k}'", p) for k, p in case.masks.items()]
        headers = {}
        for what, path in files:
            if path is None:
                continue
            if not path.is_file():
                problems.append(f"{where}: {what} file {path} does not exist")
                continue
            try:
                headers[what] = read_header(path)
            except RuntimeError:
                problems.append(f"{where}: {what} file {path} cannot be read as an image")
        image = headers.get("image")
        if image is not None:
            if image.GetDimension() != 3:
                problems.append(f"{where}: image is {image.GetDimension()}D; MoME trains on 3D CT")
            for what, h in headers.items():
                if what in ("image", "seg.nrrd"):
                    continue
                if not same_grid(h, image, GRID_TOLERANCE):
                    problems.append(
                        f"{where}: {what} geometry (size {h.GetSize()}, spacing {np.round(h.GetSpacing(), 3).tolist()}) "
                        f"does not match the image (size {image.GetSize()}, spacing "
                        f"{np.round(image.GetSpacing(), 3).tolist()}); resample the labels onto the image grid"
                    )
        if case.labels is not None and "labels" in headers:
            values = set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(case.labels)))).astype(int).tolist())
            unmapped = sorted(values - set(case.label_map) - {0})
            if unmapped:
                problems.append(
                    f"{where}: label values {unmapped} are not in dataset {case.dataset}'s label_map; "
                    "map them to classes or to 0 (background)"
                )
        for key in case.classes:
            if key not in vocabulary:
                near = ", ".join(c.key for c in vocabulary.closest(key, 3))
                problems.append(f"{where}: class {key!r} is not in the vocabulary (closest: {near})")
    if split is None and not manifest.cases("train"):
        problems.append("no case has split 'train'")
    return problems
