"""CT image (SimpleITK, any orientation and spacing) → the tensor the network was trained on.

The steps mirror the training pipeline (MONAI ``Orientationd`` → ``Spacingd`` →
``ScaleIntensityRanged`` → ``CropForegroundd``), done with SimpleITK in physical space so that the
way back is a plain physical-space resampling onto the input grid (see ``resample_back.py``):

1. **Orientation**: the axes are permuted/flipped to the package orientation (``RAS``: index x runs
   toward the patient's right, y anterior, z superior). Like MONAI's ``Orientation`` this never
   rotates: an oblique scan keeps its obliquity.
2. **Spacing**: linear resampling to ``preprocessing.spacing`` (``fast_spacing`` with ``fast``), on
   a grid centred on, and covering, the input's field of view.
3. **Intensity**: HU clipped to ``hu_window`` and scaled to [0, 1].
4. **Foreground crop**: the bounding box of the body (HU > -500 after a 3-voxel box mean) plus a
   margin.

The tensor is ``1×1×X×Y×Z`` in MONAI's layout (array axis 0 = index x), float16: [0, 1] values need
no more precision, and MONAI's sliding window stitches in the input's dtype, so half precision here
halves the stitched output too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from ..package import Preprocessing
from .grid import VoxelGrid

AIR_HU = -1024.0  # value for points outside the input's field of view
BODY_THRESHOLD_HU = -500.0  # fat is about -100 HU, lung about -850: the body outline lies in between
BODY_SMOOTHING_VOXELS = 3  # box mean, so that noise and thin table edges do not count as body
CROP_MARGIN_MM = 10.0


@dataclass(frozen=True)
class PreparedImage:
    """The network input and every parameter needed to map results back to the input grid."""

    tensor: torch.Tensor  # 1×1×X×Y×Z float16 in [0, 1], covering ``grid``
    grid: VoxelGrid  # the cropped model grid the tensor lies on
    resampled_grid: VoxelGrid  # the model grid before cropping
    source_grid: VoxelGrid  # the input image's grid, which every output must equal
    crop_start: tuple[int, int, int]  # (x, y, z) index of the crop in ``resampled_grid``
    orientation: str  # the orientation the axes were brought to, e.g. "RAS"
    source_orientation: str  # closest orientation code of the input, e.g. "LPS"
    spacing: tuple[float, float, float]
    hu_window: tuple[float, float]

    @property
    def body_center(self) -> np.ndarray:
        """Centre of the cropped (body) region, LPS mm: a midline estimate for left/right decisions."""
        return self.grid.center()


def oriented_direction(direction: tuple[float, ...], orientation: str) -> tuple[float, ...]:
    """The direction matrix an image with ``direction`` gets when its axes are permuted/flipped to
    ``orientation`` (DICOM/ITK letters, as MONAI and nibabel use them: ``RAS`` = x toward right)."""
    probe = sitk.Image([2, 2, 2], sitk.sitkUInt8)
    probe.SetDirection(direction)
    return tuple(sitk.DICOMOrient(probe, orientation).GetDirection())


def model_grid(source: VoxelGrid, spacing: tuple[float, float, float], orientation: str = "RAS") -> VoxelGrid:
    """The grid in ``orientation`` with ``spacing`` that covers the same box as ``source``, centred on it."""
    direction = oriented_direction(source.direction, orientation)
    target = np.asarray(direction).reshape(3, 3)
    # Corners of the field of view (voxel edges, not centres) expressed along the new axes.
    size = np.asarray(source.size, dtype=float)
    corners = np.array([[c[0], c[1], c[2]] for c in np.ndindex(2, 2, 2)], dtype=float) * size - 0.5
    points = source.index_to_physical(corners)
    along = points @ target  # coordinates along the new (orthonormal) axes
    extent = along.max(axis=0) - along.min(axis=0)
    new_size = np.maximum(1, np.round(extent / np.asarray(spacing))).astype(int)
    center = points.mean(axis=0)
    origin = center - target @ ((new_size - 1) / 2 * np.asarray(spacing))
    return VoxelGrid(
        size=tuple(int(s) for s in new_size),  # type: ignore[arg-type]
        spacing=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        origin=tuple(float(o) for o in origin),  # type: ignore[arg-type]
        direction=direction,
    )


def resample_to_grid(image: sitk.Image, grid: VoxelGrid, default_value: float = AIR_HU) -> sitk.Image:
    """Linear resampling of ``image`` onto ``grid`` by physical position, as float32.

    No anti-aliasing before down-sampling, on purpose: MONAI's ``Spacingd`` in the training pipeline
    does none either, and the model should see the same kind of image it was trained on.
    """
    return sitk.Resample(
        image,
        list(grid.size),
        sitk.Transform(),
        sitk.sitkLinear,
        grid.origin,
        grid.spacing,
        grid.direction,
        default_value,
        sitk.sitkFloat32,
    )


def body_box(image: sitk.Image, margin_mm: float = CROP_MARGIN_MM) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(start, size) in (x, y, z) index order of the body's bounding box plus a margin.

    The whole image when nothing is above the body threshold (a phantom, an all-air test volume).
    """
    # A box mean rather than a Gaussian: separable and cheap, and it works on volumes only a few
    # slices thick (ITK's recursive Gaussian needs at least four voxels along every axis).
    smoothed = ndimage.uniform_filter(sitk.GetArrayViewFromImage(image), BODY_SMOOTHING_VOXELS, mode="nearest")
    body = smoothed > BODY_THRESHOLD_HU  # (z, y, x)
    size_xyz = np.asarray(image.GetSize())
    if not body.any():
        return (0, 0, 0), tuple(int(s) for s in size_xyz)  # type: ignore[return-value]
    low, high = [], []
    for axis in (2, 1, 0):  # x, y, z
        hits = np.flatnonzero(body.any(axis=tuple(a for a in range(3) if a != axis)))
        low.append(hits[0])
        high.append(hits[-1])
    margin = np.ceil(margin_mm / np.asarray(image.GetSpacing())).astype(int)
    start = np.maximum(0, np.asarray(low) - margin)
    stop = np.minimum(size_xyz, np.asarray(high) + 1 + margin)
    return tuple(int(s) for s in start), tuple(int(s) for s in stop - start)  # type: ignore[return-value]


def scale_intensity(hu: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Clip to ``window`` and map it linearly onto [0, 1] (MONAI ``ScaleIntensityRange`` with clip)."""
    low, high = float(window[0]), float(window[1])
    out = np.clip(hu, low, high, dtype=np.float32)
    out -= low
    out /= high - low
    return out


def prepare_image(image: sitk.Image, preprocessing: Preprocessing, fast: bool = False,
                  crop_foreground: bool = True) -> PreparedImage:
    """Run steps 1-4 of the module docstring on a 3D CT in Hounsfield units."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("prepare_image needs a 3D scalar CT image")
    spacing = tuple(float(s) for s in (preprocessing.fast_spacing if fast else preprocessing.spacing))
    source = VoxelGrid.of(image)
    full = model_grid(source, spacing, preprocessing.orientation)  # type: ignore[arg-type]
    resampled = resample_to_grid(image, full)

    if crop_foreground:
        start, size = body_box(resampled)
    else:
        start, size = (0, 0, 0), full.size
    cropped = full.sub_grid(start, size)
    hu = sitk.GetArrayViewFromImage(resampled)[
        start[2] : start[2] + size[2], start[1] : start[1] + size[1], start[0] : start[0] + size[0]
    ]
    scaled = scale_intensity(hu, preprocessing.hu_window)
    del resampled
    # (z, y, x) → (x, y, z): MONAI keeps index x as the first array axis.
    tensor = torch.from_numpy(np.ascontiguousarray(scaled.transpose(2, 1, 0))).to(torch.float16)[None, None]
    return PreparedImage(
        tensor=tensor,
        grid=cropped,
        resampled_grid=full,
        source_grid=source,
        crop_start=start,
        orientation=preprocessing.orientation,
        source_orientation=sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()),
        spacing=spacing,  # type: ignore[arg-type]
        hu_window=tuple(float(v) for v in preprocessing.hu_window),  # type: ignore[arg-type]
    )
