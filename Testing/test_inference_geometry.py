"""Preprocessing and resampling back: masks land on exactly the input's voxels, for every orientation.

A ``ThresholdModel`` stands in for the network: class k is "HU > level", so the right answer is known
voxel by voxel on the input grid. With the model spacing equal to the input spacing every step must
be exact (any flip, axis swap or half-voxel shift shows up as mismatching voxels); with a coarser
spacing the mask must still overlap the truth far better than its left-right mirror image.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from image_fixtures import rotated
from stand_ins import ThresholdModel, random_package

from mome.imaging import Grid, model_grid, oriented_direction
from mome.inference import PostprocessOptions, Segmenter, prepare_image
from mome.io.reading import read_ct
from mome.package import Preprocessing

LEVEL_HU = 37.5  # the ThresholdModel default: soft tissue with contrast, bone


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


def threshold_masks(image: sitk.Image, spacing: tuple[float, float, float]) -> np.ndarray:
    # Large windows: the stand-in model does not care, and 512×512 slices need few of them.
    preprocessing = Preprocessing(spacing=spacing, patch_size=(256, 256, 64))
    package = random_package(preprocessing=preprocessing, class_keys=("aorta",))
    segmenter = Segmenter(package, model=ThresholdModel((LEVEL_HU,)), device="cpu",
                          postprocess=PostprocessOptions(enabled=False))
    result = segmenter.segment(image, ["aorta"])
    assert result.device_used == "cpu"
    return result.masks[0]


@pytest.fixture(scope="module")
def ras_nifti(shared_data) -> sitk.Image:
    image = sitk.ReadImage(str(shared_data / "totalseg_example" / "example_ct_sm.nii.gz"))
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()) == "RAS"
    return image


@pytest.fixture(scope="module")
def lps_nrrd(shared_data) -> sitk.Image:
    image = sitk.ReadImage(str(shared_data / "pyradiomics_lung" / "lung1_image.nrrd"))
    assert sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()) == "LPS"
    return image[128:384, 96:352, :]  # a 256×256×48 crop keeps the test quick, anisotropic 0.57×5 mm


@pytest.fixture(scope="module")
def dicom_series(shared_data) -> sitk.Image:
    return read_ct(shared_data / "dcmqi_ct3slice" / "ct").image


def _inputs(request, name: str) -> sitk.Image:
    if name == "oblique":
        return rotated(request.getfixturevalue("ras_nifti"))
    return request.getfixturevalue(name)


@pytest.mark.parametrize("name", ["ras_nifti", "lps_nrrd", "oblique", "dicom_series"])
def test_masks_are_exact_when_the_model_spacing_is_the_input_spacing(request, name):
    image = _inputs(request, name)
    mask = threshold_masks(image, tuple(image.GetSpacing()))
    truth = sitk.GetArrayViewFromImage(image) > LEVEL_HU
    assert mask.shape == truth.shape
    assert truth.sum() > 1000
    assert int((mask != truth).sum()) == 0


@pytest.mark.parametrize("name,spacing", [("ras_nifti", 4.0), ("lps_nrrd", 2.0), ("oblique", 4.0), ("dicom_series", 1.5)])
def test_masks_overlap_the_truth_after_real_resampling(request, name, spacing):
    image = _inputs(request, name)
    mask = threshold_masks(image, (spacing,) * 3)
    truth = sitk.GetArrayViewFromImage(image) > LEVEL_HU
    assert mask.shape == truth.shape
    # The mirror image is what a lost flip would give; it must be clearly worse.
    assert dice(mask, truth) > 0.75
    assert dice(mask, truth) > dice(mask, truth[:, :, ::-1]) + 0.3


def test_model_grid_is_ras_and_covers_the_field_of_view(lps_nrrd):
    source = Grid.of(lps_nrrd)
    grid = model_grid(source, (1.5, 1.5, 1.5), "RAS")
    assert grid.direction == pytest.approx((-1, 0, 0, 0, -1, 0, 0, 0, 1))
    # Same physical extent (to within one target voxel) and same centre.
    extent = np.asarray(source.size) * np.asarray(source.spacing)
    assert np.abs(np.asarray(grid.size) * 1.5 - extent).max() <= 1.5
    np.testing.assert_allclose(grid.center(), source.center(), atol=1e-6)


def test_oblique_directions_are_permuted_not_rotated(ras_nifti):
    oblique = rotated(ras_nifti)
    direction = np.asarray(oriented_direction(oblique.GetDirection(), "RAS")).reshape(3, 3)
    original = np.asarray(oblique.GetDirection()).reshape(3, 3)
    # Every new axis is ± one of the old ones: MONAI's Orientation semantics, no resampling rotation.
    products = np.abs(direction.T @ original)
    np.testing.assert_allclose(np.sort(products, axis=1)[:, -1], 1.0, atol=1e-9)


def test_prepared_tensor_is_windowed_cropped_and_in_monai_layout(ras_nifti):
    prep = Preprocessing(spacing=(3.0, 3.0, 3.0), hu_window=(-175.0, 250.0))
    prepared = prepare_image(ras_nifti, prep)
    assert prepared.tensor.dtype == torch.float16
    assert prepared.tensor.shape[2:] == tuple(prepared.grid.size)  # (x, y, z): MONAI layout
    assert 0.0 <= float(prepared.tensor.min()) and float(prepared.tensor.max()) <= 1.0
    # The body crop removed air around the patient but kept the whole body.
    assert np.prod(prepared.grid.size) < np.prod(prepared.resampled_grid.size)
    # The file is RAS with 3 mm voxels already, so tensor[x, y, z] is file voxel (x, y, z) + crop start.
    hu = sitk.GetArrayViewFromImage(ras_nifti)  # (z, y, x)
    s = prepared.crop_start
    for x, y, z in [(7, 5, 0), (20, 30, 10)]:
        expected = np.clip((hu[s[2] + z, s[1] + y, s[0] + x] + 175.0) / 425.0, 0, 1)
        assert float(prepared.tensor[0, 0, x, y, z]) == pytest.approx(expected, abs=1e-3)


def test_fast_mode_uses_the_coarser_spacing(ras_nifti):
    prep = Preprocessing(spacing=(3.0, 3.0, 3.0), fast_spacing=(6.0, 6.0, 6.0))
    assert prepare_image(ras_nifti, prep, fast=True).spacing == (6.0, 6.0, 6.0)
    assert prepare_image(ras_nifti, prep).spacing == (3.0, 3.0, 3.0)
