"""Loading a CT volume from NIfTI, NRRD, MHA/MHD or DICOM into one checked SimpleITK image.

Everything that would make the model silently fail (a screenshot, a single slice, a colour
export, a 4D series, a truncated file) is caught here with a message that says what to do; values
that are not CT in Hounsfield units are reported in ``LoadedImage.input_check``.
The geometry (origin, spacing, direction) is passed through from the file untouched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import SimpleITK as sitk

from .atomic import full_suffix
from .errors import ImageReadError, first_error_line
from .plausibility import PASSED, InputCheck, check_ct_values, check_file_complete

if TYPE_CHECKING:
    from . import dicom_series

_VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
_COMPLEX_TYPES = {sitk.sitkComplexFloat32, sitk.sitkComplexFloat64}
_INT16_SAFE_TYPES = {sitk.sitkInt8, sitk.sitkUInt8, sitk.sitkInt16}


@dataclass
class LoadedImage:
    """A CT volume ready for inference, with where it came from and what looked suspicious."""

    image: sitk.Image  # 3D scalar, int16 or float32, geometry exactly as in the file (LPS)
    source: Path
    dicom_files: list[Path] | None = None  # instance files in slice order when read from DICOM
    series_description: str = ""
    warnings: list[str] = field(default_factory=list)
    # Whether the values look like CT in HU; callers decide what a failure means (mome segment
    # refuses unless --skip-input-check).
    input_check: InputCheck = PASSED


def read_ct(path: str | os.PathLike[str]) -> LoadedImage:
    """Read a CT from a volume file, a DICOM series folder or one file of a DICOM series.

    Raises :class:`ImageReadError` for inputs MoME cannot segment (a truncated file:
    :class:`~mome.io.plausibility.ImplausibleInputError`); soft problems (several series in a
    folder) become ``warnings``, and whether the values look like CT in Hounsfield units is
    ``input_check``.
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise ImageReadError(
            f"Input not found: {source}. Check the path; MoME reads a NIfTI/NRRD/MHA file, "
            "a DICOM series folder or one file of a DICOM series."
        )
    if source.is_dir():
        series, warnings = _dicom().choose_series(source)
        loaded = _load_series(source, series, warnings)
    elif full_suffix(source).lower() not in _VOLUME_SUFFIXES and _dicom().looks_like_dicom(source):
        loaded = _load_series(source, _dicom().series_of_file(source), [])
    else:
        # SimpleITK reads a cut-off NIfTI as if the rest were zeros: check the file first.
        check_file_complete(source).raise_if_failed()
        loaded = LoadedImage(image=_read_file(source), source=source)
    loaded.image = _as_scalar_3d(loaded.image, source, loaded.warnings)
    loaded.input_check = check_ct_values(loaded.image, source.name)
    return loaded


def _dicom():
    """The DICOM reader, imported on first use: volume files (NIfTI/NRRD/MHA) read without pydicom."""
    from . import dicom_series

    return dicom_series


def _load_series(source: Path, series: dicom_series.DicomSeries, warnings: list[str]) -> LoadedImage:
    image, read_warnings = _dicom().read_series(series)
    return LoadedImage(
        image=image,
        source=source,
        dicom_files=list(series.files),
        series_description=series.description,
        warnings=warnings + read_warnings,
    )


def _read_file(path: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as exc:
        kind = "a supported" if full_suffix(path).lower() in _VOLUME_SUFFIXES else "an unsupported"
        raise ImageReadError(
            f"Cannot read {path} as an image ({kind} file type '{full_suffix(path) or 'no extension'}'): "
            f"{first_error_line(exc)}. Use a NIfTI (.nii/.nii.gz), NRRD, MHA/MHD file or a "
            "DICOM series folder, and check that the file is complete."
        ) from exc


def _size_text(image: sitk.Image) -> str:
    return "×".join(str(s) for s in image.GetSize())


def _as_scalar_3d(image: sitk.Image, source: Path, warnings: list[str]) -> sitk.Image:
    """Reject non-CT shapes and pixel types; return int16 or float32 without changing values."""
    components = image.GetNumberOfComponentsPerPixel()
    if components > 1 or image.GetPixelID() in _COMPLEX_TYPES:
        raise ImageReadError(
            f"MoME needs a scalar (grey-value) CT volume; {source} has {components} values per voxel "
            f"({image.GetPixelIDTypeAsString()}), like an RGB screenshot or a vector field. "
            "Export the original CT (DICOM or NIfTI in Hounsfield units) instead."
        )
    dimension = image.GetDimension()
    if dimension == 4 and image.GetSize()[3] == 1:
        # A 4D file with a single time point is a 3D volume in disguise (some converters do this).
        size = list(image.GetSize()[:3]) + [0]
        image = sitk.Extract(image, size, [0, 0, 0, 0], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX)
        warnings.append(f"{source} is 4D with one time point; using it as a 3D volume.")
        dimension = 3
    if dimension == 4:
        raise ImageReadError(
            f"MoME needs one 3D CT volume; got a 4D image of size {_size_text(image)} from {source} "
            "(a time series or multi-phase scan). Extract the phase to segment into its own file first."
        )
    if dimension == 2 or (dimension == 3 and min(image.GetSize()) == 1):
        shape = "×".join(str(s) for s in image.GetSize() if s != 1) if dimension == 3 else _size_text(image)
        raise ImageReadError(
            f"MoME needs a 3D CT volume; got a 2D image of size {shape} from {source}. "
            "Pass the whole series (a DICOM folder or a NIfTI/NRRD volume), not a single slice or picture."
        )
    if dimension != 3:
        raise ImageReadError(f"MoME needs a 3D CT volume; {source} has {dimension} dimensions.")
    return _to_working_type(image)


def _to_working_type(image: sitk.Image) -> sitk.Image:
    """int16 when every value fits (half the memory of float32), float32 otherwise."""
    pixel = image.GetPixelID()
    if pixel == sitk.sitkInt16:
        return image
    if pixel in _INT16_SAFE_TYPES:
        return sitk.Cast(image, sitk.sitkInt16)
    if pixel in {sitk.sitkFloat32, sitk.sitkFloat64}:
        return image if pixel == sitk.sitkFloat32 else sitk.Cast(image, sitk.sitkFloat32)
    low, high = _min_max(image)
    fits = -32768 <= low and high <= 32767
    return sitk.Cast(image, sitk.sitkInt16 if fits else sitk.sitkFloat32)


def _min_max(image: sitk.Image) -> tuple[float, float]:
    stats = sitk.MinimumMaximumImageFilter()
    stats.Execute(image)
    return stats.GetMinimum(), stats.GetMaximum()
