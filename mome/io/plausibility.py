"""Is this input plausibly a complete CT in Hounsfield units? Checked before any model is loaded.

A segmentation model asked to segment a blank, truncated, normalised or MRI volume still returns
masks, and they look confident. Two checks stop that, each returning an :class:`InputCheck` (a
machine-readable ``code`` plus one line for people):

* :func:`check_file_complete` — the file holds all the voxels its header promises. SimpleITK reads
  a cut-off NIfTI (``.nii`` or ``.nii.gz``) without complaint and fills the missing part with zeros,
  so the gzip stream is decompressed to its end marker and the byte count compared with the header.
  A damaged file is never segmented (``overridable`` is False). NRRD and MetaImage readers already
  fail on short data.
* :func:`check_ct_values` — the voxel values look like CT in HU: all finite (NaN is damage, never
  overridable), not constant, not mostly exact zeros, some air (≤ −500 HU) and some soft tissue
  (−100…300 HU). An expert who knows better (a phantom, a crop inside the body) can skip the rest
  (``mome segment --skip-input-check``).

Calibration (``Testing/test_io_plausibility.py`` runs it on every real CT in ``../shared/data``):
the lowest air fraction among them is 0.35 (aorta CTA crop), the lowest soft-tissue fraction 0.26
(lung1 chest CT), the highest exact-zero fraction 0.005; the thresholds below leave a wide margin
to all of them, while blank, 0..1-normalised, MRI-like 0..1000 and +1024-shifted volumes have none.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from .atomic import full_suffix
from .errors import ImageReadError

#: The override flag of ``mome segment`` (and what the Slicer panel passes after asking).
OVERRIDE_FLAG = "--skip-input-check"

AIR_BELOW_HU = -500.0  # lung and outside air lie near -1000; nothing in a body is below -500 but air
MIN_AIR_FRACTION = 0.01
SOFT_TISSUE_HU = (-100.0, 300.0)  # fat's upper end to contrast-enhanced vessels
MIN_SOFT_TISSUE_FRACTION = 0.05
MAX_ZERO_FRACTION = 0.5  # more than half of the voxels exactly 0: blank or zero-filled data
SAMPLE_VOXELS = 2_000_000  # values are checked on an evenly strided sample of about this many voxels

_NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class InputCheck:
    """The outcome of a check: ``ok``, a stable ``code`` and a one-line ``message`` saying why and
    what to do; ``overridable`` says whether ``--skip-input-check`` may bypass it."""

    ok: bool
    code: str  # ok | truncated | unreadable | not_finite | constant | zero_filled | no_air | no_soft_tissue
    message: str = ""
    overridable: bool = True
    measurements: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The form of the JSON ``error`` event's ``input_check`` field (for the Slicer panel)."""
        return {"ok": self.ok, "code": self.code, "message": self.message, "overridable": self.overridable,
                "override_flag": OVERRIDE_FLAG if self.overridable and not self.ok else None,
                "measurements": self.measurements}

    def raise_if_failed(self) -> "InputCheck":
        """Raise :class:`ImplausibleInputError` unless ``ok``; return self (for chaining)."""
        if not self.ok:
            raise ImplausibleInputError(self)
        return self


PASSED = InputCheck(ok=True, code="ok")


class ImplausibleInputError(ImageReadError):
    """The input failed a check; ``check`` holds the structured reason."""

    def __init__(self, check: InputCheck):
        super().__init__(check.message)
        self.check = check

    def event_fields(self) -> dict[str, Any]:
        return {"input_check": self.check.to_dict()}


# ---------------------------------------------------------------------------------------- file
def check_file_complete(path: str | os.PathLike[str]) -> InputCheck:
    """A truncated or corrupt gzip stream, or a NIfTI file shorter than its header says, fails."""
    source = Path(path).expanduser()
    if not source.is_file():
        return PASSED  # folders (DICOM series) and missing files are the reader's to report
    suffix = full_suffix(source).lower()
    try:
        if suffix.endswith(".gz"):
            length = _gzip_length(source)
            opener = gzip.open
        else:
            length = source.stat().st_size
            opener = open
        if suffix in _NIFTI_SUFFIXES:
            with opener(source, "rb") as handle:
                expected = _nifti_expected_bytes(handle.read(540))
            if expected is not None and length < expected:
                return _damaged(
                    "truncated",
                    f"{source.name} is truncated: it holds {length:,} bytes of image data where its header "
                    f"describes {expected:,} (the file was cut off while copying or downloading); copy it again",
                    expected_bytes=expected, actual_bytes=length,
                )
    except EOFError:
        return _damaged("truncated", f"{source.name} is truncated: its compressed data stops before the end "
                                     "(the file was cut off while copying or downloading); copy it again")
    except (gzip.BadGzipFile, zlib.error) as exc:
        return _damaged("unreadable", f"{source.name} is a damaged gzip file ({exc}); copy it again")
    return PASSED


def _damaged(code: str, message: str, **measurements: float) -> InputCheck:
    return InputCheck(ok=False, code=code, message=message, overridable=False, measurements=measurements)


#: Compressed bytes read, and decompressed bytes made, per step of :func:`_gzip_length`: zlib releases
#: the GIL while it inflates, so large steps let the check run beside other Python work.
_GZIP_READ_BYTES = 4 << 20
_GZIP_OUTPUT_BYTES = 32 << 20


def _gzip_length(path: Path) -> int:
    """Decompressed size of every gzip member; inflating to the end checks each member's end-of-stream
    marker, CRC and length (``zlib.error`` for damaged data, ``EOFError`` for a cut-off stream)."""
    total, member_started = 0, False
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb") as handle:
        while chunk := handle.read(_GZIP_READ_BYTES):
            while chunk:
                if not member_started:
                    chunk = chunk.lstrip(b"\0")  # gzip tolerates zero padding after a member
                    if not chunk:
                        break
                member_started = True
                total += len(decompressor.decompress(chunk, _GZIP_OUTPUT_BYTES))
                chunk = decompressor.unconsumed_tail
                if decompressor.eof:  # a member ended; another may follow (bgzip, concatenated files)
                    chunk = decompressor.unused_data
                    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    member_started = False
    if member_started:
        total += len(decompressor.flush())  # output still held back by the last step's limit
        if not decompressor.eof:
            raise EOFError("the compressed data ends before its end-of-stream marker")
    return total


def _nifti_expected_bytes(header: bytes) -> int | None:
    """``vox_offset`` + voxel data size from a NIfTI-1 or -2 header; None when it is not one.

    Written out here (a dozen lines of the published header layout) rather than adding nibabel as
    a dependency of the engine and of the Slicer extension for two fields.
    """
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:  # NIfTI-1
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
            break
        if len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:  # NIfTI-2
            bitpix = struct.unpack(endian + "h", header[14:16])[0]
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
            break
    else:
        return None
    rank = dims[0]
    if not 1 <= rank <= 7 or bitpix <= 0:
        return None
    voxels = int(np.prod([max(1, d) for d in dims[1:rank + 1]], dtype=np.int64))
    return max(offset, 348) + voxels * bitpix // 8


# ---------------------------------------------------------------------------------------- values
def check_ct_values(image: sitk.Image | np.ndarray, name: str = "the input") -> InputCheck:
    """Whether the voxel values of ``image`` (a SimpleITK image or a numpy array, e.g. Slicer's
    ``arrayFromVolume``) look like CT in Hounsfield units; ``name`` goes into the message."""
    array = sitk.GetArrayViewFromImage(image) if isinstance(image, sitk.Image) else np.asarray(image)
    values = _sample(array).astype(np.float32, copy=False).ravel()
    if values.size == 0:
        return _implausible("constant", f"{name} has no voxels", {})
    finite = np.isfinite(values)
    if not finite.all():  # damage no expert can wave through: every statistic of it would be NaN
        share = float(1 - finite.mean())
        return _damaged("not_finite", f"{name} contains NaN or infinite values ({share:.1%} of the voxels): it "
                                      "is damaged or not a CT; export the CT again", non_finite_fraction=round(share, 4))
    low, high = float(values.min()), float(values.max())
    measured = {
        "min": low, "max": high,
        "air_fraction": round(float((values <= AIR_BELOW_HU).mean()), 4),
        "soft_tissue_fraction": round(float(((values >= SOFT_TISSUE_HU[0]) & (values <= SOFT_TISSUE_HU[1])).mean()), 4),
        "zero_fraction": round(float((values == 0).mean()), 4),
    }
    if low == high:
        return _implausible("constant", f"every voxel of {name} has the value {low:g}: it is blank, not a CT",
                            measured)
    if measured["zero_fraction"] > MAX_ZERO_FRACTION:
        return _implausible(
            "zero_filled", f"{measured['zero_fraction']:.0%} of the voxels of {name} are exactly 0: it is mostly "
                           "blank (an incomplete file or export?)", measured)
    air = measured["air_fraction"]
    if air < MIN_AIR_FRACTION:
        amount = "no air" if air == 0 else f"almost no air ({air:.1%} of the voxels)"
        return _implausible("no_air", f"{name} has {amount} below {AIR_BELOW_HU:g} HU: {_range_hint(low, high)}",
                            measured)
    if measured["soft_tissue_fraction"] < MIN_SOFT_TISSUE_FRACTION:
        return _implausible(
            "no_soft_tissue", f"only {measured['soft_tissue_fraction']:.1%} of the voxels of {name} lie in the "
                              f"soft-tissue range {SOFT_TISSUE_HU[0]:g}..{SOFT_TISSUE_HU[1]:g} HU", measured)
    return InputCheck(ok=True, code="ok", measurements=measured)


def _sample(array: np.ndarray) -> np.ndarray:
    """An evenly strided view with at most about ``SAMPLE_VOXELS`` voxels (no copy)."""
    if array.size <= SAMPLE_VOXELS or array.ndim == 0:
        return array
    stride = int(np.ceil((array.size / SAMPLE_VOXELS) ** (1 / array.ndim)))
    return array[tuple(slice(None, None, stride) for _ in range(array.ndim))]


def _range_hint(low: float, high: float) -> str:
    if high - low <= 2:
        return f"its values span {low:g}..{high:g}, so it was normalised (e.g. to 0..1)"
    # Nothing near -1000: another modality, or CT values stored as HU + 1024 (DICOM pixel data
    # read without its RescaleIntercept of -1024); the values alone cannot tell them apart.
    return (f"its values span {low:g}..{high:g}: an MRI or another modality, or CT values stored without "
            "the rescale intercept (HU + 1024)?")


def _implausible(code: str, reason: str, measured: dict[str, float]) -> InputCheck:
    end = "" if reason.endswith("?") else "."
    message = (f"{reason}{end} MoME segments CT in Hounsfield units: give it the original CT (DICOM, or "
               f"NIfTI/NRRD in HU); if this really is CT in HU, pass {OVERRIDE_FLAG}")
    return InputCheck(ok=False, code=code, message=message, overridable=True, measurements=measured)
