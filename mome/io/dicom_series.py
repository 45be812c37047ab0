"""Finding, choosing and reading a DICOM image series in a folder.

SimpleITK (GDCM) groups and orders the files; pydicom reads just the few header fields GDCM does
not expose conveniently (Modality, SeriesDescription), so a folder exported from PACS with a
scout, a dose report and the CT itself still loads the CT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from .errors import ImageReadError, first_error_line

# Series whose files are not a pixel volume of the patient: loading them as the CT would fail or
# produce nonsense, so they are never chosen.
_NON_IMAGE_MODALITIES = frozenset(
    {"SEG", "SR", "RTSTRUCT", "RTPLAN", "RTDOSE", "RTRECORD", "PR", "KO", "REG", "DOC", "OT_SR"}
)
_HEADER_TAGS = ["Modality", "SeriesDescription", "SeriesInstanceUID", "NumberOfFrames"]


@dataclass(frozen=True)
class DicomSeries:
    """One series of a folder: its instance files in the order SimpleITK stacks them."""

    uid: str
    files: tuple[Path, ...]
    modality: str
    description: str

    def label(self) -> str:
        """Short human-readable name used in warnings and errors."""
        desc = f" '{self.description}'" if self.description else ""
        return f"{self.modality or '?'} series{desc} ({len(self.files)} files, UID {self.uid})"


def _header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS, force=True)


def looks_like_dicom(path: Path) -> bool:
    """True for files with the DICOM preamble, or the ``.dcm`` extension (some exports omit it)."""
    if path.suffix.lower() in {".dcm", ".dicom", ".ima"}:
        return True
    try:
        return pydicom.misc.is_dicom(path)
    except OSError:
        return False


def _series_in(folder: Path) -> list[DicomSeries]:
    found = []
    for uid in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)):
        files = tuple(Path(f) for f in sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid))
        if not files:
            continue
        header = _header(files[0])
        found.append(
            DicomSeries(
                uid=uid,
                files=files,
                modality=str(header.get("Modality", "")).upper(),
                description=str(header.get("SeriesDescription", "")),
            )
        )
    return found


def _subfolders_with_dicom(folder: Path, max_dirs: int = 200, max_hits: int = 5) -> list[Path]:
    """A bounded search below ``folder`` so the error for a too-high folder can name the right one."""
    hits: list[Path] = []
    for visited, (root, dirs, files) in enumerate(os.walk(folder)):
        dirs.sort()
        if visited >= max_dirs or len(hits) >= max_hits:
            break
        if Path(root) == folder:
            continue
        if any(looks_like_dicom(Path(root) / name) for name in sorted(files)[:5]):
            hits.append(Path(root))
    return hits


def _no_dicom_error(folder: Path) -> ImageReadError:
    subfolders = _subfolders_with_dicom(folder)
    if subfolders:
        names = ", ".join(str(p.relative_to(folder)) for p in subfolders)
        return ImageReadError(
            f"No DICOM series directly in folder {folder}, but its subfolders hold DICOM files "
            f"({names}). Pass the subfolder of the CT series instead."
        )
    others = sorted(p.name for p in folder.iterdir() if p.is_file())[:5]
    hint = f" It holds: {', '.join(others)}; pass an image file directly." if others else " It is empty."
    return ImageReadError(
        f"No DICOM files found in folder {folder}.{hint} MoME reads a DICOM series folder or a NIfTI/NRRD/MHA volume."
    )


def choose_series(folder: Path) -> tuple[DicomSeries, list[str]]:
    """Pick the CT series with the most slices in ``folder``; return it and any warnings."""
    all_series = _series_in(folder)
    if not all_series:
        raise _no_dicom_error(folder)
    images = [s for s in all_series if s.modality not in _NON_IMAGE_MODALITIES]
    if not images:
        kinds = ", ".join(sorted({s.modality for s in all_series}))
        subfolders = _subfolders_with_dicom(folder)
        hint = (
            f" Its subfolders hold DICOM files ({', '.join(str(p.relative_to(folder)) for p in subfolders)})."
            if subfolders
            else ""
        )
        raise ImageReadError(
            f"Folder {folder} holds DICOM objects ({kinds}) but no image series.{hint} "
            "Pass the folder of the CT images instead."
        )
    # CT first, then the series with the most files: scouts and single-slice dose screens lose.
    chosen = max(images, key=lambda s: (s.modality == "CT", len(s.files)))
    warnings: list[str] = []
    if chosen.modality != "CT":
        warnings.append(f"No CT series in {folder}; using the {chosen.label()}.")
    if len(all_series) > 1:
        warnings.append(
            f"Folder {folder} holds {len(all_series)} DICOM series; using the {chosen.label()} and "
            f"skipping {len(all_series) - 1} other(s). Pass a folder with one series to choose another."
        )
    return chosen, warnings


def series_of_file(file: Path) -> DicomSeries:
    """The series a single DICOM file belongs to, gathered from the file's folder."""
    try:
        header = _header(file)
    except Exception as exc:  # pydicom raises several types for damaged files
        raise ImageReadError(f"Cannot read DICOM file {file}: {exc}. Is the file complete?") from exc
    uid = str(header.get("SeriesInstanceUID", ""))
    modality = str(header.get("Modality", "")).upper()
    if modality in _NON_IMAGE_MODALITIES:
        raise ImageReadError(
            f"{file} is a DICOM {modality} object, not an image. Pass a file or folder of the CT series."
        )
    files = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(file.parent), uid) if uid else ()
    ordered = tuple(Path(f) for f in files)
    if file.resolve() not in {f.resolve() for f in ordered}:
        ordered = (file,)  # GDCM could not group it (no UID); read the file on its own
    return DicomSeries(uid, ordered, modality, str(header.get("SeriesDescription", "")))


def read_series(series: DicomSeries) -> tuple[sitk.Image, list[str]]:
    """Read the series files into one volume (rescale slope/intercept applied by GDCM)."""
    warnings: list[str] = []
    try:
        if len(series.files) == 1:
            # A lone file may be a multi-frame (enhanced) CT that GDCM reads as a volume by itself.
            return sitk.ReadImage(str(series.files[0])), warnings
        reader = sitk.ImageSeriesReader()
        reader.SetFileNames([str(f) for f in series.files])
        reader.MetaDataDictionaryArrayUpdateOn()
        image = reader.Execute()
    except RuntimeError as exc:
        raise ImageReadError(
            f"Cannot read the DICOM {series.label()}: {first_error_line(exc)}. "
            "The files may be compressed with an unsupported codec or incomplete."
        ) from exc
    gap_warning = _slice_gap_warning(reader, image)
    if gap_warning:
        warnings.append(gap_warning)
    return image, warnings


def _slice_gap_warning(reader: sitk.ImageSeriesReader, image: sitk.Image) -> str | None:
    """Warn when slices are unevenly spaced: the volume then assumes one spacing for all of them."""
    key = "0020|0032"  # ImagePositionPatient
    count = image.GetSize()[2]
    if count < 3 or not all(reader.HasMetaDataKey(i, key) for i in range(count)):
        return None
    positions = np.array([[float(v) for v in reader.GetMetaData(i, key).split("\\")] for i in range(count)])
    normal = np.array(image.GetDirection()).reshape(3, 3)[:, 2]
    gaps = np.diff(positions @ normal)
    typical = float(np.median(np.abs(gaps)))
    if typical > 0 and float(np.max(np.abs(np.abs(gaps) - typical))) > 0.1 * typical:
        return (
            f"DICOM slice spacing is not uniform (gaps {np.abs(gaps).min():.3g}..{np.abs(gaps).max():.3g} mm); "
            f"the volume assumes {image.GetSpacing()[2]:.3g} mm. Slices may be missing from the series."
        )
    return None
