"""DICOM Segmentation objects (binary SEG) referencing the CT series they were computed from.

highdicom builds the object; this module's job is the mapping between the SimpleITK volume
(z index along the reference direction) and the source instances (one frame per DICOM file,
stacked by ImagePositionPatient), plus the coded description of every segment.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.sr.codedict import codes

from ..vocabulary.codes import Code, SegmentDescriptor
from .errors import GeometryMismatchError
from .masks import check_count, checked_masks

# Allowed mismatch between the reference grid and a source frame: a small fraction of a voxel
# absorbs DICOM's decimal-string rounding of positions and spacings.
_VOXEL_TOLERANCE = 0.01
_COSINE_TOLERANCE = 1e-4
_LABEL_MAX = 64  # DICOM LO value length (SegmentLabel)


def write_dicom_seg(
    path: str | os.PathLike[str],
    masks: Sequence[np.ndarray] | np.ndarray,
    reference_image: sitk.Image,
    dicom_files: Sequence[str | os.PathLike[str]],
    segments: Sequence[SegmentDescriptor],
    algorithm_name: str,
    algorithm_version: str,
    series_description: str = "MoME segmentation",
    series_number: int = 300,
    anatomic_regions: Mapping[str, Code] | None = None,
) -> Path:
    """Write a binary DICOM-SEG of the masks that references every source CT instance.

    ``reference_image`` must be the volume read from ``dicom_files`` (as returned by
    :func:`mome.io.reading.read_ct`); masks are (z, y, x) arrays on it. ``anatomic_regions`` maps a
    segment key to the organ a finding lies in (e.g. a tumour's organ). Raises
    :class:`GeometryMismatchError` when the reference is not the DICOM series geometry.
    """
    arrays = checked_masks(masks, reference_image)
    check_count(arrays, segments)
    if not arrays:
        raise ValueError("A DICOM-SEG needs at least one segment")
    # Headers suffice for highdicom's references and geometry; skipping pixels saves ~0.5 MB a slice.
    sources = [pydicom.dcmread(os.fspath(f), stop_before_pixels=True) for f in dicom_files]
    ordered, slice_indices = map_frames_to_slices(sources, reference_image)
    # (frames, rows, columns, K): frame f shows slice slice_indices[f]. bool -> uint8 is a free view.
    pixel_array = np.stack([mask[slice_indices] for mask in arrays], axis=-1).view(np.uint8)
    descriptions = [
        _segment_description(i + 1, s, algorithm_name, algorithm_version, (anatomic_regions or {}).get(s.key))
        for i, s in enumerate(segments)
    ]
    with warnings.catch_warnings():
        # Source headers are copied as they are; a one-component PatientName is common and valid.
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name.*")
        seg = _build(
            ordered, pixel_array, descriptions, algorithm_name, algorithm_version, series_description, series_number
        )
    target = Path(path)
    seg.save_as(target)
    return target


def _build(
    ordered: list[pydicom.Dataset],
    pixel_array: np.ndarray,
    descriptions: list[hd.seg.SegmentDescription],
    algorithm_name: str,
    algorithm_version: str,
    series_description: str,
    series_number: int,
) -> hd.seg.Segmentation:
    return hd.seg.Segmentation(
        source_images=ordered,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="MoME",
        manufacturer_model_name=algorithm_name[:_LABEL_MAX],
        software_versions=algorithm_version,
        device_serial_number="none",
        series_description=series_description[:_LABEL_MAX],
        content_label="MOME",
        content_description="Automatic segmentation"[:_LABEL_MAX],
        # An all-empty result still has to be a valid object with its frames.
        omit_empty_frames=bool(pixel_array.any()),
        # Many CT exports carry an empty SpecificCharacterSet (= default repertoire), which
        # highdicom would reject when copying it; None leaves the default.
        specific_character_set=ordered[0].get("SpecificCharacterSet") or None,
    )


def map_frames_to_slices(
    sources: Sequence[pydicom.Dataset], reference: sitk.Image
) -> tuple[list[pydicom.Dataset], list[int]]:
    """Order source instances along the slice normal and find each one's z index in ``reference``.

    Every source frame must coincide with one reference slice (same in-plane size, spacing and
    orientation, position on a whole slice index) and every slice must have exactly one source.
    """
    if not sources:
        raise ValueError("No DICOM source files given for the DICOM-SEG")
    normal = np.cross(*_orientation(sources[0]))
    ordered = sorted(sources, key=lambda ds: float(np.dot(_position(ds), normal)))
    direction = np.array(reference.GetDirection()).reshape(3, 3)
    size_x, size_y, size_z = reference.GetSize()
    spacing_x, spacing_y, _ = reference.GetSpacing()
    indices = []
    for ds in ordered:
        problem = _frame_problem(ds, direction, (size_x, size_y), (spacing_x, spacing_y))
        position = reference.TransformPhysicalPointToContinuousIndex([float(v) for v in _position(ds)])
        i, j, k = position
        if problem is None and (
            abs(i) > _VOXEL_TOLERANCE or abs(j) > _VOXEL_TOLERANCE or abs(k - round(k)) > _VOXEL_TOLERANCE
        ):
            problem = f"its position maps to voxel index ({i:.3f}, {j:.3f}, {k:.3f}), not a whole slice"
        if problem is None and not 0 <= round(k) < size_z:
            problem = f"its slice index {round(k)} lies outside the reference (0..{size_z - 1})"
        if problem is not None:
            raise GeometryMismatchError(
                f"The reference image is not the geometry of the DICOM series: instance "
                f"{ds.get('SOPInstanceUID', '?')} does not match ({problem}). Pass the image read "
                "from these same DICOM files, without resampling."
            )
        indices.append(int(round(k)))
    if sorted(indices) != list(range(size_z)):
        raise GeometryMismatchError(
            f"The reference image is not the geometry of the DICOM series: its {size_z} slices are "
            f"covered by source slices {sorted(indices)} (missing or duplicate instances)."
        )
    return ordered, indices


def _orientation(ds: pydicom.Dataset) -> tuple[np.ndarray, np.ndarray]:
    cosines = np.array([float(v) for v in ds.ImageOrientationPatient])
    return cosines[:3], cosines[3:]


def _position(ds: pydicom.Dataset) -> np.ndarray:
    return np.array([float(v) for v in ds.ImagePositionPatient])


def _frame_problem(
    ds: pydicom.Dataset, direction: np.ndarray, size: tuple[int, int], spacing: tuple[float, float]
) -> str | None:
    """Why a source frame is not a slice of the reference grid, or None when it is."""
    if (int(ds.Columns), int(ds.Rows)) != size:
        return f"frame size {ds.Columns}×{ds.Rows} vs reference {size[0]}×{size[1]}"
    row_cosine, column_cosine = _orientation(ds)
    # DICOM: the row direction runs along a row (increasing column = SimpleITK x), the column
    # direction down the columns (increasing row = y).
    if not (
        np.allclose(row_cosine, direction[:, 0], atol=_COSINE_TOLERANCE)
        and np.allclose(column_cosine, direction[:, 1], atol=_COSINE_TOLERANCE)
    ):
        return "image orientation differs from the reference direction"
    row_spacing, column_spacing = (float(v) for v in ds.PixelSpacing)
    if not np.allclose((column_spacing, row_spacing), spacing, rtol=1e-4):
        return f"pixel spacing {row_spacing}\\{column_spacing} vs reference {spacing[1]}\\{spacing[0]}"
    return None


def _coded(code: Code) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


def _segment_description(
    number: int,
    segment: SegmentDescriptor,
    algorithm_name: str,
    algorithm_version: str,
    anatomic_region: Code | None,
) -> hd.seg.SegmentDescription:
    description = hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment.name[:_LABEL_MAX],
        segmented_property_category=_coded(segment.category),
        segmented_property_type=_coded(segment.type),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name=algorithm_name[:_LABEL_MAX],
            family=codes.cid7162.ArtificialIntelligence,
            version=algorithm_version,
        ),
        tracking_uid=hd.UID(),
        tracking_id=segment.key[:_LABEL_MAX],
        anatomic_regions=[_coded(anatomic_region)] if anatomic_region is not None else None,
        display_color=hd.color.CIELabColor.from_rgb(*segment.color),
    )
    if segment.type_modifier is not None:
        # Laterality etc. is a modifier nested in the property type item (DICOM PS3.3 C.8.20.2);
        # highdicom has no argument for it.
        type_item = description.SegmentedPropertyTypeCodeSequence[0]
        type_item.SegmentedPropertyTypeModifierCodeSequence = [_coded(segment.type_modifier)]
    return description
