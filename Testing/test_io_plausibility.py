"""The input check, calibrated: every real CT in ../shared/data passes, every broken variant fails."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from mome.io import ImageReadError, read_ct
from mome.io.plausibility import (
    MAX_ZERO_FRACTION,
    MIN_AIR_FRACTION,
    MIN_SOFT_TISSUE_FRACTION,
    ImplausibleInputError,
    check_ct_values,
    check_file_complete,
)

REAL_CTS = [
    "totalseg_example/example_ct.nii.gz",
    "totalseg_example/example_ct_sm.nii.gz",
    "totalseg_example/aorta_crop/ct_cropped.nii.gz",  # CTA crop: the least air of them all
    "totalseg_example/pulmonary_crop/ct_cropped.nii.gz",
    "pyradiomics_lung/lung1_image.nrrd",  # chest CT: the least soft tissue
    "dcmqi_ct3slice/ct",  # a 3-slice DICOM series
    "ircad_1.1/ct.nii.gz",  # evaluation-only patient: read, never trained on
]


@pytest.mark.parametrize("relative", REAL_CTS)
def test_every_real_ct_passes_with_a_margin(shared_data: Path, relative: str) -> None:
    path = shared_data / relative
    assert check_file_complete(path).ok
    check = check_ct_values(read_ct(path).image)
    assert check.ok, check.message
    m = check.measurements
    # The thresholds sit far below (above, for zeros) every real CT, not just below the weakest.
    assert m["air_fraction"] > 10 * MIN_AIR_FRACTION
    assert m["soft_tissue_fraction"] > 4 * MIN_SOFT_TISSUE_FRACTION
    assert m["zero_fraction"] < MAX_ZERO_FRACTION / 10


@pytest.fixture(scope="module")
def ct(shared_data: Path) -> sitk.Image:
    return sitk.ReadImage(str(shared_data / "totalseg_example" / "example_ct_sm.nii.gz"), sitk.sitkFloat32)


def _with(ct: sitk.Image, array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array.astype(np.float32))
    image.CopyInformation(ct)
    return image


def broken_variants(ct: sitk.Image) -> dict[str, tuple[sitk.Image, str]]:
    """name → (image, expected code): what a user can hand MoME by mistake."""
    hu = sitk.GetArrayFromImage(ct)
    rng = np.random.default_rng(0)
    zero_filled = hu.copy()
    zero_filled[: int(0.6 * hu.shape[0])] = 0  # the tail of a decode that stopped early
    smooth = np.cumsum(np.cumsum(rng.random(hu.shape), axis=1), axis=2)
    return {
        "all zero": (_with(ct, np.zeros_like(hu)), "constant"),
        "constant air": (_with(ct, np.full_like(hu, -1000)), "constant"),
        "mostly zero-filled": (_with(ct, zero_filled), "zero_filled"),
        "rescaled to 0..1": (_with(ct, (hu - hu.min()) / (hu.max() - hu.min())), "no_air"),
        "MRI-like 0..1000": (_with(ct, 1000 * smooth / smooth.max()), "no_air"),
        "stored values, HU + 1024": (_with(ct, hu + 1024), "no_air"),
        "air and bone only": (_with(ct, np.where(hu < 0, -1000, 1500)), "no_soft_tissue"),
    }


def test_every_broken_variant_fails_with_its_reason(ct: sitk.Image) -> None:
    for name, (image, code) in broken_variants(ct).items():
        check = check_ct_values(image, "scan.nii.gz")
        assert not check.ok and check.code == code, f"{name}: {check}"
        assert check.overridable and "--skip-input-check" in check.message
        assert "scan.nii.gz" in check.message and "\n" not in check.message
        with pytest.raises(ImplausibleInputError) as raised:
            check.raise_if_failed()
        assert raised.value.check is check
        assert raised.value.event_fields()["input_check"]["override_flag"] == "--skip-input-check"


def test_nan_is_damage_that_cannot_be_overridden(ct: sitk.Image) -> None:
    holes = np.where(np.random.default_rng(0).random(ct.GetSize()[::-1]) < 0.01, np.nan, sitk.GetArrayFromImage(ct))
    check = check_ct_values(_with(ct, holes))
    assert check.code == "not_finite" and not check.overridable and "--skip-input-check" not in check.message


def test_hints_name_the_likely_cause(ct: sitk.Image) -> None:
    variants = broken_variants(ct)
    assert "normalised" in check_ct_values(variants["rescaled to 0..1"][0]).message
    assert "rescale intercept" in check_ct_values(variants["stored values, HU + 1024"][0]).message


def test_a_numpy_array_is_checked_like_an_image(ct: sitk.Image) -> None:
    # The Slicer panel has arrays (slicer.util.arrayFromVolume), not files.
    assert check_ct_values(sitk.GetArrayFromImage(ct)).ok
    assert check_ct_values(np.zeros((4, 5, 6), np.int16)).code == "constant"


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("keep", [1000, 0.5, 0.999])
def test_truncated_nifti_is_detected_and_never_read(ct: sitk.Image, tmp_path: Path, suffix: str, keep) -> None:
    full = tmp_path / f"full{suffix}"
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkInt16), str(full))
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    check = check_file_complete(cut)
    assert not check.ok and check.code == "truncated" and not check.overridable, check
    assert "cut" in check.message and "copy it again" in check.message
    with pytest.raises(ImplausibleInputError, match="truncated"):
        read_ct(cut)  # SimpleITK alone would read it, with zeros where the data is missing
    assert check_file_complete(full).ok


def test_damaged_gzip_is_reported_as_such(ct: sitk.Image, tmp_path: Path) -> None:
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkInt16), str(path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # a corrupted block in the middle
    path.write_bytes(bytes(data))
    check = check_file_complete(path)
    assert not check.ok and check.code in ("unreadable", "truncated") and not check.overridable
    with pytest.raises(ImageReadError):
        read_ct(path)


def test_a_complete_gzip_of_too_few_voxels_is_truncated(ct: sitk.Image, tmp_path: Path) -> None:
    # The gzip stream itself is intact, but the NIfTI inside it is short: the header's byte count tells.
    plain = tmp_path / "ct.nii"
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkInt16), str(plain))
    packed = tmp_path / "short.nii.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()[:-5000]))
    check = check_file_complete(packed)
    assert check.code == "truncated" and "header describes" in check.message


@pytest.mark.parametrize("layout", ["members", "padded"])
def test_whole_gzip_files_of_several_members_or_with_zero_padding_pass(ct: sitk.Image, tmp_path: Path,
                                                                       monkeypatch, layout: str) -> None:
    """bgzip and concatenated files hold several gzip members; some tools pad with zeros. Small read
    and output steps put member ends and padding across step boundaries."""
    from mome.io import plausibility

    monkeypatch.setattr(plausibility, "_GZIP_READ_BYTES", 4096)
    monkeypatch.setattr(plausibility, "_GZIP_OUTPUT_BYTES", 10_000)
    plain = tmp_path / "ct.nii"
    sitk.WriteImage(sitk.Cast(ct, sitk.sitkInt16), str(plain))
    data = plain.read_bytes()
    path = tmp_path / "ct.nii.gz"
    if layout == "members":
        path.write_bytes(b"".join(gzip.compress(data[i:i + 30_000]) for i in range(0, len(data), 30_000)))
    else:
        path.write_bytes(gzip.compress(data) + bytes(9000))
    assert check_file_complete(path).ok
    path.write_bytes(path.read_bytes().rstrip(b"\0")[:-7])  # the last member cut short
    assert check_file_complete(path).code == "truncated"
