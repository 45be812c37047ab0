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

The model grid, the resampler, the intensity scaling and the axis order are ``mome.imaging``'s,
shared with training (``mome.training.data``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage

from ..imaging import AIR_HU, Grid, bounding_box, model_grid, resample, scale_intensity, to_network_layout
from ..package import Preprocessing

BODY_THRESHOLD_HU = -500.0  # fat is about -100 HU, lung about -850: the body outline lies in between
BODY_SMOOTHING_VOXELS = 3  # box mean, so that noise and thin table edges do not count as body
CROP_MARGIN_MM = 10.0


@dataclass(frozen=True)
class PreparedImage:
    """The network input and every parameter needed to map results back to the input grid."""

    tensor: torch.Tensor  # 1×1×X×Y×Z float16 in [0, 1], covering ``grid``
    grid: Grid  # the cropped model grid the tensor lies on
    resampled_grid: Grid  # the model grid before cropping
    source_grid: Grid  # the input image's grid, which every output must equal
    crop_start: tuple[int, int, int]  # (x, y, z) index of the crop in ``resampled_grid``
    orientation: str  # the orientation the axes were brought to, e.g. "RAS"
    source_orientation: str  # closest orientation code of the input, e.g. "LPS"
    spacing: tuple[float, float, float]
    hu_window: tuple[float, float]

    @property
    def body_center(self) -> np.ndarray:
        """Centre of the cropped (body) region, LPS mm: a midline estimate for left/right decisions."""
        return self.grid.center()


def body_box(image: sitk.Image, margin_mm: float = CROP_MARGIN_MM) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(start, size) in (x, y, z) index order of the body's bounding box plus a margin.

    The whole image when nothing is above the body threshold (a phantom, an all-air test volume).
    """
    # A box mean rather than a Gaussian: separable and cheap, and it works on volumes only a few
    # slices thick (ITK's recursive Gaussian needs at least four voxels along every axis).
    smoothed = ndimage.uniform_filter(sitk.GetArrayViewFromImage(image), BODY_SMOOTHING_VOXELS, mode="nearest")
    margin_xyz = np.ceil(margin_mm / np.asarray(image.GetSpacing())).astype(int)
    box = bounding_box(smoothed > BODY_THRESHOLD_HU, margin=margin_xyz[::-1])  # (z, y, x) slices
    if box is None:
        return (0, 0, 0), tuple(int(s) for s in image.GetSize())  # type: ignore[return-value]
    box_xyz = box[::-1]
    return (tuple(int(s.start) for s in box_xyz),  # type: ignore[return-value]
            tuple(int(s.stop - s.start) for s in box_xyz))


def prepare_image(image: sitk.Image, preprocessing: Preprocessing, fast: bool = False,
                  crop_foreground: bool = True) -> PreparedImage:
    """Run steps 1-4 of the module docstring on a 3D CT in Hounsfield units."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ValueError("prepare_image needs a 3D scalar CT image")
    spacing = tuple(float(s) for s in (preprocessing.fast_spacing if fast else preprocessing.spacing))
    source = Grid.of(image)
    full = model_grid(source, spacing, preprocessing.orientation)
    resampled = resample(image, full, "linear", AIR_HU, sitk.sitkFloat32)

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
    tensor = torch.from_numpy(np.ascontiguousarray(to_network_layout(scaled))).to(torch.float16)[None, None]
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
