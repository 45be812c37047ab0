"""DICOM-SEG on a real 3-slice CT series, read back with highdicom and checked per source frame."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from mome.imaging import resample
from mome.io import GeometryMismatchError, read_ct, write_dicom_seg
from mome.vocabulary.codes import Code, SegmentDescriptor

ANATOMY = Code("123037004", "SCT", "Anatomical Structure")
LIVER = SegmentDescriptor("liver", "liver", (221, 130, 101), ANATOMY, Code("10200004", "SCT", "Liver"))
LESION = SegmentDescriptor(
    "liver_lesion",
    "liver lesion",
    (255, 0, 0),
    Code("49755003", "SCT", "Morphologically Altered Structure"),
    Code("108369006", "SCT", "Neoplasm"),
)
KIDNEY = SegmentDescriptor(
    "kidney_left",
    "left kidney",
    (0, 90, 255),
    ANATOMY,
    Code("64033007", "SCT", "Kidney"),
    Code("7771000", "SCT", "Left"),
)


@pytest.fixture(scope="module")
def data(shared_data: Path) -> Path:
    return shared_data / "dcmqi_ct3slice"


@pytest.fixture(scope="module")
def series(data: Path):
    return read_ct(data / "ct")


@pytest.fixture(scope="module")
def liver(data: Path, series) -> np.ndarray:
    """The manual liver label map resampled (nearest) onto the series grid."""
    labels = resample(sitk.ReadImage(str(data / "liver_seg.nrrd")), series.image, "nearest")
    mask = sitk.GetArrayFromImage(labels) > 0
    assert mask.sum(axis=(1, 2)).min() > 10000  # liver on every slice
    return mask


@pytest.fixture(scope="module")
def masks(liver: np.ndarray) -> list[np.ndarray]:
    # A lesion inside the liver on the top slice only (z index 2 = 01.dcm) and an empty kidney.
    lesion = np.zeros_like(liver)
    y, x = np.argwhere(liver[2]).mean(axis=0).astype(int)
    lesion[2, y - 10 : y + 10, x - 15 : x + 15] = True
    lesion &= liver
    return [liver, lesion, np.zeros_like(liver)]


@pytest.fixture(scope="module")
def written(tmp_path_factory, series, masks) -> hd.seg.Segmentation:
    path = tmp_path_factory.mktemp("seg") / "result.dcm"
    write_dicom_seg(path, masks, series.image, series.dicom_files, [LIVER, LESION, KIDNEY], "MoME", "0.1.0")
    return hd.seg.segread(path)


def _uid(file: Path) -> str:
    return pydicom.dcmread(file, stop_before_pixels=True).SOPInstanceUID


def test_references_every_source_instance(written: hd.seg.Segmentation, series) -> None:
    ct = pydicom.dcmread(series.dicom_files[0], stop_before_pixels=True)
    assert written.Modality == "SEG" and written.SegmentationType == "BINARY"
    assert written.StudyInstanceUID == ct.StudyInstanceUID and written.FrameOfReferenceUID == ct.FrameOfReferenceUID
    assert written.SeriesDescription == "MoME segmentation"
    referenced = {
        i.ReferencedSOPInstanceUID for s in written.ReferencedSeriesSequence for i in s.ReferencedInstanceSequence
    }
    assert referenced == {_uid(f) for f in series.dicom_files}
    assert written.ReferencedSeriesSequence[0].SeriesInstanceUID == ct.SeriesInstanceUID


def test_segment_codes_and_algorithm(written: hd.seg.Segmentation) -> None:
    assert written.get_segment_numbers() == [1, 2, 3]
    for number, descriptor in enumerate([LIVER, LESION, KIDNEY], start=1):
        item = written.get_segment_description(number)
        assert item.segment_label == descriptor.name
        assert item.tracking_id == descriptor.key
        category, kind = item.segmented_property_category, item.segmented_property_type
        assert (category.value, category.scheme_designator, category.meaning) == (
            descriptor.category.value,
            descriptor.category.scheme,
            descriptor.category.meaning,
        )
        assert (kind.value, kind.scheme_designator, kind.meaning) == (
            descriptor.type.value,
            descriptor.type.scheme,
            descriptor.type.meaning,
        )
        assert item.algorithm_type.value == "AUTOMATIC"
        assert item.algorithm_identification[0].AlgorithmName == "MoME"
        assert item.algorithm_identification[0].AlgorithmVersion == "0.1.0"
        assert len(item.RecommendedDisplayCIELabValue) == 3
    modifier = (
        written.get_segment_description(3)
        .SegmentedPropertyTypeCodeSequence[0]
        .SegmentedPropertyTypeModifierCodeSequence[0]
    )
    assert (modifier.CodeValue, modifier.CodeMeaning) == ("7771000", "Left")


def test_masks_per_source_frame(written: hd.seg.Segmentation, series, masks) -> None:
    expected = np.stack(masks)
    for file in series.dicom_files:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
        # Independent mapping of the file to a z index: its position along the volume's z axis.
        k = round(series.image.TransformPhysicalPointToContinuousIndex([float(v) for v in ds.ImagePositionPatient])[2])
        pixels = written.get_pixels_by_source_instance(
            [ds.SOPInstanceUID], segment_numbers=[1, 2, 3], assert_missing_frames_are_empty=True
        )
        assert pixels.shape == (1, 512, 512, 3)
        for segment in range(3):
            np.testing.assert_array_equal(pixels[0, ..., segment] > 0, expected[segment, k])
    # The lesion lies only on the top slice (01.dcm): the frame mapping must send it there.
    top = written.get_pixels_by_source_instance([_uid(series.dicom_files[-1])], segment_numbers=[2])
    assert series.dicom_files[-1].name == "01.dcm" and top.sum() == masks[1].sum() > 0


def test_liver_equals_reference_dicom_seg(written: hd.seg.Segmentation, data: Path, series) -> None:
    """dcmqi's own DICOM-SEG of the same liver label map: identical pixels per source instance."""
    reference = hd.seg.segread(data / "liver.dcm")
    for file in series.dicom_files:
        uid = _uid(file)
        theirs = reference.get_pixels_by_source_instance([uid], segment_numbers=[1], ignore_spatial_locations=True)
        ours = written.get_pixels_by_source_instance([uid], segment_numbers=[1])
        np.testing.assert_array_equal(ours, theirs)


def test_empty_result_is_still_valid(tmp_path: Path, series, liver: np.ndarray) -> None:
    path = write_dicom_seg(
        tmp_path / "empty.dcm", [np.zeros_like(liver)], series.image, series.dicom_files, [LIVER], "MoME", "0.1.0"
    )
    seg = hd.seg.segread(path)
    assert seg.NumberOfFrames == 3
    assert not seg.get_pixels_by_source_instance([_uid(f) for f in series.dicom_files], segment_numbers=[1]).any()


def test_reference_not_from_the_series_is_rejected(tmp_path: Path, series, liver: np.ndarray) -> None:
    shifted = sitk.Image(series.image)
    shifted.SetOrigin(np.add(series.image.GetOrigin(), (0.4, 0.0, 0.0)).tolist())
    with pytest.raises(GeometryMismatchError, match="not the geometry of the DICOM series"):
        write_dicom_seg(tmp_path / "a.dcm", [liver], shifted, series.dicom_files, [LIVER], "MoME", "0.1.0")
    half = sitk.Shrink(series.image, [2, 2, 1])
    small = np.zeros(half.GetSize()[::-1], dtype=bool)
    with pytest.raises(GeometryMismatchError, match="frame size 512×512"):
        write_dicom_seg(tmp_path / "b.dcm", [small], half, series.dicom_files, [LIVER], "MoME", "0.1.0")
    with pytest.raises(GeometryMismatchError, match="missing or duplicate"):
        write_dicom_seg(tmp_path / "c.dcm", [liver], series.image, series.dicom_files[:2], [LIVER], "MoME", "0.1.0")
    assert not any(tmp_path.iterdir())
