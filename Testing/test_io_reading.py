"""read_ct on real CT data: geometry kept exactly, DICOM series ordered, bad inputs explained."""

from __future__ import annotations

import shutil
from pathlib import Path

import nrrd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from mome.imaging import same_grid
from mome.io import ImageReadError, read_ct


@pytest.fixture(scope="module")
def ct_nifti(shared_data: Path) -> Path:
    return shared_data / "totalseg_example" / "example_ct_sm.nii.gz"


@pytest.fixture(scope="module")
def ct_series(shared_data: Path) -> Path:
    return shared_data / "dcmqi_ct3slice" / "ct"


def _rotated(image: sitk.Image, degrees: float = 20.0) -> sitk.Image:
    """The image with an oblique direction: its own direction rotated about two axes."""
    a, b = np.radians(degrees), np.radians(degrees / 2)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    oblique = sitk.Image(image)
    oblique.SetDirection((rz @ rx @ np.array(image.GetDirection()).reshape(3, 3)).ravel().tolist())
    return oblique


def _geometry(image: sitk.Image) -> tuple:
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def test_nifti_ras_geometry_and_values_preserved(shared_data: Path) -> None:
    path = shared_data / "totalseg_example" / "example_ct.nii.gz"
    loaded = read_ct(path)
    direct = sitk.ReadImage(str(path))
    assert _geometry(loaded.image) == _geometry(direct)
    # RAS NIfTI becomes LPS with flipped first two axes, exactly as SimpleITK reads it.
    assert loaded.image.GetDirection() == (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
    assert loaded.image.GetPixelID() == sitk.sitkInt16  # int32 file, values fit int16
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(loaded.image), sitk.GetArrayViewFromImage(direct))
    assert loaded.dicom_files is None and loaded.warnings == []
    assert loaded.input_check.ok  # a real CT in HU
    assert loaded.source == path


def test_nrrd_lps_geometry_matches_header(shared_data: Path) -> None:
    path = shared_data / "pyradiomics_lung" / "lung1_image.nrrd"
    loaded = read_ct(path)
    header = nrrd.read_header(str(path))
    assert header["space"] == "left-posterior-superior"
    assert loaded.image.GetSize() == tuple(int(s) for s in header["sizes"])
    np.testing.assert_allclose(loaded.image.GetOrigin(), header["space origin"], rtol=0, atol=1e-9)
    axes = np.array(header["space directions"], dtype=float)
    np.testing.assert_allclose(loaded.image.GetSpacing(), np.linalg.norm(axes, axis=1), rtol=1e-12)
    np.testing.assert_allclose(
        np.array(loaded.image.GetDirection()).reshape(3, 3),
        (axes / np.linalg.norm(axes, axis=1)[:, None]).T,
        atol=1e-12,
    )
    assert loaded.image.GetPixelID() == sitk.sitkInt16
    assert loaded.warnings == []


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_oblique_direction_preserved(ct_nifti: Path, tmp_path: Path, suffix: str) -> None:
    oblique = _rotated(sitk.ReadImage(str(ct_nifti)))
    path = tmp_path / f"oblique{suffix}"
    sitk.WriteImage(oblique, str(path))
    loaded = read_ct(path)
    # NIfTI stores the affine as float32; NRRD as decimal text with full precision.
    tol = 1e-12 if suffix == ".nrrd" else 1e-5
    assert loaded.image.GetSize() == oblique.GetSize()
    np.testing.assert_allclose(loaded.image.GetDirection(), oblique.GetDirection(), atol=tol)
    np.testing.assert_allclose(loaded.image.GetOrigin(), oblique.GetOrigin(), atol=tol * 1000)
    np.testing.assert_allclose(loaded.image.GetSpacing(), oblique.GetSpacing(), rtol=tol)
    assert same_grid(loaded.image, oblique)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(loaded.image), sitk.GetArrayViewFromImage(oblique))


def test_dicom_series_ordered_along_normal(ct_series: Path) -> None:
    loaded = read_ct(ct_series)
    image = loaded.image
    assert image.GetSize() == (512, 512, 3)
    assert [p.name for p in loaded.dicom_files] == ["03.dcm", "02.dcm", "01.dcm"]  # IPP z -128.69 first
    for k, file in enumerate(loaded.dicom_files):
        ds = pydicom.dcmread(file)
        # Slice k of the volume lies where its DICOM file says, with HU = stored * slope + intercept.
        np.testing.assert_allclose(
            image.TransformIndexToPhysicalPoint((0, 0, k)), [float(v) for v in ds.ImagePositionPatient], atol=1e-4
        )
        hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image)[k], hu)
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    np.testing.assert_allclose(image.GetSpacing()[:2], (column_spacing, row_spacing), rtol=1e-9)
    np.testing.assert_allclose(
        np.array(image.GetDirection()).reshape(3, 3)[:, :2].T.ravel(), [float(v) for v in ds.ImageOrientationPatient]
    )
    assert loaded.warnings == []


def test_single_dicom_file_reads_its_series(ct_series: Path) -> None:
    from_file = read_ct(ct_series / "02.dcm")
    from_folder = read_ct(ct_series)
    assert _geometry(from_file.image) == _geometry(from_folder.image)
    assert from_file.dicom_files == from_folder.dicom_files


def _copy_as_new_series(files: list[Path], folder: Path, description: str) -> str:
    """Copies of some instances with new UIDs: another, shorter CT series in the same folder."""
    uid = pydicom.uid.generate_uid()
    for index, file in enumerate(files):
        ds = pydicom.dcmread(file)
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesDescription = description
        ds.save_as(folder / f"scout{index}.dcm")
    return uid


def test_folder_with_several_series_picks_largest_ct(shared_data: Path, ct_series: Path, tmp_path: Path) -> None:
    folder = tmp_path / "study"
    shutil.copytree(ct_series, folder)
    shutil.copy(shared_data / "dcmqi_ct3slice" / "liver.dcm", folder / "seg.dcm")  # a SEG: never chosen
    _copy_as_new_series(sorted(ct_series.glob("*.dcm"))[:2], folder, "short")
    loaded = read_ct(folder)
    chosen_uid = pydicom.dcmread(ct_series / "01.dcm", stop_before_pixels=True).SeriesInstanceUID
    assert loaded.image.GetSize() == (512, 512, 3)
    assert [p.name for p in loaded.dicom_files] == ["03.dcm", "02.dcm", "01.dcm"]
    assert len(loaded.warnings) == 1
    assert chosen_uid in loaded.warnings[0] and "skipping 2" in loaded.warnings[0]


# --- inputs MoME cannot use: each gets a message that says what is wrong -------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="Input not found: .*nothing.nii.gz"):
        read_ct(tmp_path / "nothing.nii.gz")


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="No DICOM files found .* It is empty"):
        read_ct(tmp_path)


def test_folder_without_dicom_names_its_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ImageReadError, match="No DICOM files found .*notes.txt"):
        read_ct(tmp_path)


def test_folder_above_the_series_names_subfolder(shared_data: Path) -> None:
    # dcmqi_ct3slice holds only the SEG object directly and the CT in ct/.
    with pytest.raises(ImageReadError, match=r"no image series.*\(ct\)"):
        read_ct(shared_data / "dcmqi_ct3slice")


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "scan.nrrd"
    path.write_bytes(b"this is not a nrrd file at all")
    with pytest.raises(ImageReadError, match="Cannot read .*scan.nrrd as an image"):
        read_ct(path)
    other = tmp_path / "report.docx"
    other.write_bytes(b"PK\x03\x04 zipped words")
    with pytest.raises(ImageReadError, match="unsupported file type '.docx'"):
        read_ct(other)


def test_2d_png_rejected(tmp_path: Path) -> None:
    path = tmp_path / "screenshot.png"
    Image.fromarray(np.zeros((40, 60), dtype=np.uint8)).save(path)
    with pytest.raises(ImageReadError, match="MoME needs a 3D CT volume; got a 2D image of size 60×40"):
        read_ct(path)


def test_2d_nrrd_and_single_slice_rejected(ct_nifti: Path, tmp_path: Path) -> None:
    volume = sitk.ReadImage(str(ct_nifti))
    slice_2d = volume[:, :, 10]
    sitk.WriteImage(slice_2d, str(tmp_path / "slice.nrrd"))
    with pytest.raises(ImageReadError, match="got a 2D image of size 122×101"):
        read_ct(tmp_path / "slice.nrrd")
    sitk.WriteImage(volume[:, :, 10:11], str(tmp_path / "one_slice.nrrd"))
    with pytest.raises(ImageReadError, match="got a 2D image of size 122×101"):
        read_ct(tmp_path / "one_slice.nrrd")


def test_rgb_rejected(ct_nifti: Path, tmp_path: Path) -> None:
    gray = sitk.Cast(sitk.ReadImage(str(ct_nifti)) > 0, sitk.sitkUInt8)
    sitk.WriteImage(sitk.Compose(gray, gray, gray), str(tmp_path / "rgb.nrrd"))
    with pytest.raises(ImageReadError, match="scalar .* has 3 values per voxel"):
        read_ct(tmp_path / "rgb.nrrd")
    Image.fromarray(np.zeros((20, 30, 3), dtype=np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageReadError, match="has 3 values per voxel"):
        read_ct(tmp_path / "rgb.png")


def test_4d_rejected_but_single_timepoint_accepted(ct_nifti: Path, tmp_path: Path) -> None:
    volume = sitk.ReadImage(str(ct_nifti))
    sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(tmp_path / "phases.nii.gz"))
    with pytest.raises(ImageReadError, match="got a 4D image of size 122×101×30×2"):
        read_ct(tmp_path / "phases.nii.gz")
    sitk.WriteImage(sitk.JoinSeries([volume]), str(tmp_path / "one_phase.nii.gz"))
    loaded = read_ct(tmp_path / "one_phase.nii.gz")
    assert loaded.image.GetDimension() == 3 and loaded.image.GetSize() == volume.GetSize()
    np.testing.assert_allclose(loaded.image.GetOrigin(), volume.GetOrigin(), atol=1e-4)


@pytest.mark.parametrize(
    "name, transform",
    [
        ("8bit.nrrd", lambda a: np.clip((a + 1024) / 8, 0, 255).astype(np.uint8)),
        ("raw_unsigned.nrrd", lambda a: np.clip(a + 1024, 0, 4095).astype(np.uint16)),
        ("normalised.nrrd", lambda a: ((a - a.min()) / (a.max() - a.min())).astype(np.float32)),
    ],
)
def test_non_hu_intensities_fail_the_input_check(ct_nifti: Path, tmp_path: Path, name: str, transform) -> None:
    volume = sitk.ReadImage(str(ct_nifti))
    converted = sitk.GetImageFromArray(transform(sitk.GetArrayFromImage(volume).astype(np.float64)))
    converted.CopyInformation(volume)
    sitk.WriteImage(converted, str(tmp_path / name))
    loaded = read_ct(tmp_path / name)
    assert not loaded.input_check.ok and loaded.input_check.code == "no_air", loaded.input_check
    assert loaded.image.GetPixelID() in (sitk.sitkInt16, sitk.sitkFloat32)


# --- grid helpers ---------------------------------------------------------------------------------


def test_grid_helpers_on_real_images(shared_data: Path, ct_nifti: Path) -> None:
    from mome.imaging import GeometryMismatchError, Grid, assert_same_grid, resample

    ct = read_ct(ct_nifti).image
    empty = Grid.of(ct).empty_image()
    assert _geometry(empty) == _geometry(ct) and empty.GetPixelID() == sitk.sitkUInt8
    assert not sitk.GetArrayViewFromImage(empty).any()
    nudged = sitk.Image(ct)
    nudged.SetOrigin(np.add(ct.GetOrigin(), (1e-7, 0, 0)).tolist())  # float32-header-level noise
    assert same_grid(ct, nudged)
    shifted = sitk.Image(ct)
    shifted.SetOrigin(np.add(ct.GetOrigin(), (0.5, 0, 0)).tolist())
    assert not same_grid(ct, shifted)
    with pytest.raises(GeometryMismatchError, match="origin"):
        assert_same_grid(shifted, ct, what="mask")

    # Nearest-neighbour resampling of the 3 mm label map onto the CT grid it came from is exact,
    # and onto a finer LPS grid keeps label values (no interpolated in-between labels).
    labels = sitk.ReadImage(str(shared_data / "totalseg_example" / "example_seg.nii.gz"))
    same = resample(labels, ct, "nearest")
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(same), sitk.GetArrayViewFromImage(labels))
    finer = sitk.Image([s * 2 for s in ct.GetSize()], sitk.sitkUInt8)
    finer.SetSpacing([s / 2 for s in ct.GetSpacing()])
    finer.SetOrigin(ct.TransformContinuousIndexToPhysicalPoint((-0.25, -0.25, -0.25)))
    finer.SetDirection(ct.GetDirection())
    up = sitk.GetArrayFromImage(resample(labels, finer, "nearest"))
    assert set(np.unique(up)) <= set(np.unique(sitk.GetArrayViewFromImage(labels)))
    assert abs(int((up == 5).sum()) - 8 * int((sitk.GetArrayViewFromImage(labels) == 5).sum())) < 0.05 * (up == 5).sum()
    with pytest.raises(ValueError, match="interpolator"):
        resample(labels, ct, interpolator="cubic")
