"""Small dataset folders in the public layouts (MSD, nnU-Net, TotalSegmentator, KiTS, …), built from a
crop of the real abdominal CT in ../shared/data so that importing and checking them is quick."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

LIVER = 5  # TotalSegmentator label values in example_seg_fast_force_split
KIDNEY_RIGHT, KIDNEY_LEFT, SPLEEN = 2, 3, 1


class RealCrop:
    """A 40×40×20 voxel (3 mm) crop of example_ct around the liver, with its TotalSegmentator labels."""

    def __init__(self, shared_data: Path):
        folder = shared_data / "totalseg_example"
        ct = sitk.ReadImage(str(folder / "example_ct.nii.gz"))
        seg = sitk.ReadImage(str(folder / "example_seg_fast_force_split.nii.gz"))
        labels = sitk.GetArrayViewFromImage(seg)
        z, y, x = (int(round(c)) for c in np.argwhere(labels == LIVER).mean(axis=0))
        box = [(x - 20, x + 20), (y - 20, y + 20), (z - 10, z + 10)]
        self.image = ct[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]]
        self.seg = seg[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]]
        self.seg_array = sitk.GetArrayFromImage(self.seg)

    def write_image(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(self.image, str(path))
        return path

    def write_labels(self, path: Path, values: dict[int, int]) -> Path:
        """A label map with ``values`` (TotalSegmentator value -> new value); everything else 0."""
        out = np.zeros_like(self.seg_array, dtype=np.uint8)
        for old, new in values.items():
            out[self.seg_array == old] = new
        return self._write(out, path)

    def write_mask(self, path: Path, value: int) -> Path:
        return self._write((self.seg_array == value).astype(np.uint8), path)

    def liver_with_tumour(self, path: Path, tumour: int = 2, liver: int = 1) -> Path:
        """Liver ``liver``, and a small blob inside it ``tumour`` (a stand-in lesion)."""
        out = np.where(self.seg_array == LIVER, liver, 0).astype(np.uint8)
        zz, yy, xx = np.argwhere(self.seg_array == LIVER).mean(axis=0).round().astype(int)
        blob = np.zeros_like(out, bool)
        blob[zz - 1:zz + 2, yy - 2:yy + 3, xx - 2:xx + 3] = True
        out[blob & (out == liver)] = tumour
        return self._write(out, path)

    def _write(self, array: np.ndarray, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = sitk.GetImageFromArray(array)
        img.CopyInformation(self.seg)
        sitk.WriteImage(img, str(path))
        return path


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path
