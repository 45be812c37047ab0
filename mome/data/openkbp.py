"""One OpenKBP patient (sparse CSVs on a 128³ grid) → a CT and one binary mask per organ at risk.

OpenKBP: Babier A, Zhang B, Mahmood R, et al. "OpenKBP: The open-access knowledge-based planning
grand challenge and dataset." Medical Physics 48(9):5549–5561, 2021. Repository ``ababier/open-kbp``
(MIT), folder ``provided-data/{train,validation,test}-pats/pt_N/``; CT from TCIA collections.

This is the one place that knows how OpenKBP's files map onto an image. Two callers use it:
``mome sample`` (a remote test patient, converted after download: ``mome/hub/samples.py``) and
``recipes/mome-mini-2/data/openkbp.py`` (every patient, plus quality flags and training manifests,
which stay in the recipe). It reads files through a ``read(name) -> bytes | None`` function, so it
works on a folder, a git mirror or a download alike.

Geometry (undocumented by OpenKBP; established from the data, see the recipe's ``conversion.json``
and ``Testing/test_openkbp.py``): the CSV index is a C-order ravel of a ``(128, 128, 128)`` array
``a[row, column, slice]`` with

* row → patient **posterior** (the mandible has small rows, the spinal cord large ones),
* column → patient **left** (the left parotid has the larger column in every patient),
* slice → patient **inferior** (the brainstem has small slices, the oesophagus large ones),

i.e. DICOM's axial layout with slices stored head first. ``voxel_dimensions.csv`` gives the spacing
as (row, column, slice) in mm; rows and columns are equally spaced in every patient. We write the
slices in reverse so the image has the identity LPS direction (x → left, y → posterior, z →
superior); the origin is synthetic: the centre of the 128³ grid's first voxel is (0, 0, 0), as
OpenKBP publishes none. Every image is then cropped to the body (HU > -500) and the masks plus 10 mm;
cropping keeps each voxel's physical position. ``ct.csv`` values are HU + 1024; voxels absent from
it are air (-1024 HU).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

GRID = (128, 128, 128)  # (row, column, slice), the shape OpenKBP's own data loader reshapes to
HU_OFFSET = 1024  # ct.csv value = HU + 1024
BODY_HU = -500  # fat is about -100 HU, air -1000: the body outline lies in between
CROP_MARGIN_MM = 10.0
# OpenKBP structure file → MoME vocabulary key. The PTVs (PTV56/63/70) are treatment targets drawn
# for one plan, not anatomy, and the dose files are the challenge's answer: neither is converted.
STRUCTURES = {
    "Brainstem": "brainstem",
    "SpinalCord": "spinal_cord",
    "RightParotid": "parotid_gland_right",
    "LeftParotid": "parotid_gland_left",
    "Esophagus": "esophagus",
    "Larynx": "larynx",
    "Mandible": "mandible",
}
CT_FILE, SPACING_FILE = "ct.csv", "voxel_dimensions.csv"
# Every file the conversion reads (structure files are optional: a patient has those drawn for it).
FILES = (CT_FILE, SPACING_FILE, *(f"{name}.csv" for name in STRUCTURES))

Reader = Callable[[str], "bytes | None"]


def csv_columns(data: bytes) -> np.ndarray:
    """The rows of an OpenKBP CSV (header ``,data``) as a float array: ``(n, 2)`` index and value
    for the CT, ``(n, 1)`` indices for a mask (whose value column is empty)."""
    lines = data.split(b"\n", 1)
    if len(lines) < 2 or not lines[1].strip():
        return np.zeros((0, 2))
    with_values = lines[1].split(b"\n", 1)[0].rstrip(b"\r").split(b",")[1] != b""
    return np.loadtxt(io.BytesIO(lines[1]), delimiter=",", usecols=(0, 1) if with_values else (0,), ndmin=2)


def dense(indices: np.ndarray, values: np.ndarray | float, fill: float, dtype) -> np.ndarray:
    """A ``(row, column, slice)`` volume from flat C-order indices (OpenKBP's ``np.put`` layout)."""
    volume = np.full(int(np.prod(GRID)), fill, dtype=dtype)
    volume[indices.astype(np.int64)] = values
    return volume.reshape(GRID)


def to_image(volume: np.ndarray, spacing_rcs: np.ndarray) -> sitk.Image:
    """``a[row, column, slice]`` → an LPS image with identity direction (see the module docstring).

    SimpleITK takes arrays as ``[z, y, x]``: z = slice reversed (toward superior), y = row (toward
    posterior), x = column (toward the patient's left).
    """
    image = sitk.GetImageFromArray(np.ascontiguousarray(volume.transpose(2, 0, 1)[::-1]))
    row, column, slice_ = (float(s) for s in spacing_rcs)
    image.SetSpacing((column, row, slice_))
    image.SetOrigin((0.0, 0.0, 0.0))
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return image


@dataclass
class Patient:
    """One patient as OpenKBP stores it, on the 128³ ``(row, column, slice)`` grid."""

    hu: np.ndarray  # int16 HU; voxels absent from ct.csv are air
    spacing: np.ndarray  # (row, column, slice) in mm
    ct_voxels: int  # rows of ct.csv (the rest of the grid is filled with air)
    masks: dict[str, np.ndarray]  # vocabulary key → flat grid indices, only the structures drawn

    def images(self) -> dict[str, sitk.Image]:
        """``"ct"`` (int16 HU) and one uint8 0/1 image per structure, uncropped, with the geometry above."""
        images = {"ct": to_image(self.hu, self.spacing)}
        images.update({key: to_image(dense(found, 1, 0, np.uint8), self.spacing) for key, found in self.masks.items()})
        return images


def read_patient(read: Reader) -> Patient:
    """The patient whose files ``read(file_name)`` returns (``None`` for an absent file).

    A missing CT or spacing raises ``FileNotFoundError`` naming the file. An absent or empty
    structure file means the structure was not drawn for this patient: it is left out (unknown,
    not absent), never written as an empty mask.
    """
    raw = {name: read(name) for name in (CT_FILE, SPACING_FILE)}
    for name, data in raw.items():
        if data is None:
            raise FileNotFoundError(f"the OpenKBP patient has no {name} (file absent or unreadable)")
    spacing = np.loadtxt(io.BytesIO(raw[SPACING_FILE]))
    if spacing.shape != (3,) or not np.all(spacing > 0):
        raise ValueError(f"{SPACING_FILE} must hold three positive voxel sizes in mm, got {spacing.tolist()}")
    ct = csv_columns(raw[CT_FILE])
    hu = dense(ct[:, 0], ct[:, 1] - HU_OFFSET, -HU_OFFSET, np.int16)
    masks = {}
    for name, key in STRUCTURES.items():
        data = read(f"{name}.csv")
        found = csv_columns(data)[:, 0].astype(np.int64) if data is not None else np.zeros(0, np.int64)
        if found.size:
            masks[key] = found
    return Patient(hu, spacing, len(ct), masks)


def read_folder(folder: Path) -> Patient:
    """``read_patient`` of a folder holding one patient's CSVs (``provided-data/*-pats/pt_N/``)."""
    return read_patient(lambda name: (folder / name).read_bytes() if (folder / name).is_file() else None)


def body_box(ct: sitk.Image, masks: list[sitk.Image]) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) x/y/z indices of the body (HU > BODY_HU) and every mask, plus CROP_MARGIN_MM."""
    keep = sitk.GetArrayViewFromImage(ct) > BODY_HU
    for mask in masks:
        keep = keep | (sitk.GetArrayViewFromImage(mask) > 0)
    zyx = np.argwhere(keep)
    margin = np.ceil(CROP_MARGIN_MM / np.asarray(ct.GetSpacing())).astype(int)
    start = np.maximum(zyx.min(axis=0)[::-1] - margin, 0)
    end = np.minimum(zyx.max(axis=0)[::-1] + 1 + margin, ct.GetSize())
    return start, end


def cropped_images(patient: Patient) -> tuple[dict[str, sitk.Image], list[list[int]]]:
    """``patient.images()`` cropped to the body, and the crop as ``[[x0, x1], [y0, y1], [z0, z1]]``.

    Most of the 128³ grid is air around the head and neck: cropping keeps training crops on anatomy
    and a file ~4x smaller. Slicing keeps each voxel's physical place, so masks still overlay the CT.
    """
    images = patient.images()
    start, end = body_box(images["ct"], [images[key] for key in patient.masks])
    box = [[int(a), int(b)] for a, b in zip(start, end)]
    (x0, x1), (y0, y1), (z0, z1) = box
    return {key: image[x0:x1, y0:y1, z0:z1] for key, image in images.items()}, box


def write_images(images: dict[str, sitk.Image], ct_path: Path, masks_dir: Path) -> dict[str, Path]:
    """Write ``images["ct"]`` to ``ct_path`` and every mask to ``masks_dir/<key>.nii.gz``; the paths
    by key (``"ct"`` included)."""
    ct_path.parent.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: ct_path if key == "ct" else masks_dir / f"{key}.nii.gz" for key in images}
    for key, image in images.items():
        sitk.WriteImage(image, str(paths[key]), useCompression=True)
    return paths
