"""Reading CTs and writing segmentation results (label maps, .seg.nrrd, DICOM-SEG, stats, previews).

All images are SimpleITK images in LPS physical space; all masks are boolean numpy arrays in
SimpleITK array order (z, y, x) on the grid of the image they were computed from (grids, resampling
and their comparison are :mod:`mome.imaging`'s). Writers write the path they are given; a caller that
needs a file (or a set of files) to appear whole or not at all stages them with
:func:`mome.io.atomic.atomic_write`, as ``mome segment`` does. Nothing here imports Slicer or Qt.

The public names are imported on first use, so reading a volume file or writing a ``.seg.nrrd``
needs neither the DICOM stack (pydicom, highdicom) nor Pillow (previews).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name → submodule that defines it
_EXPORTS = {
    "atomic_write": "atomic",
    "full_suffix": "atomic",
    "map_frames_to_slices": "dicom_seg",
    "write_dicom_seg": "dicom_seg",
    "GeometryMismatchError": "errors",
    "ImageReadError": "errors",
    "write_labelmap": "labelmap",
    "to_label_map": "masks",
    "render_preview": "preview",
    "LoadedImage": "reading",
    "ImplausibleInputError": "plausibility",
    "InputCheck": "plausibility",
    "check_ct_values": "plausibility",
    "check_file_complete": "plausibility",
    "read_ct": "reading",
    "read_seg_nrrd": "seg_nrrd",
    "read_seg_nrrd_segments": "seg_nrrd",
    "write_seg_nrrd": "seg_nrrd",
    "structure_statistics": "statistics",
    "write_statistics": "statistics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({n for n in globals() if n.startswith("__")} | set(_EXPORTS))


if TYPE_CHECKING:
    from .atomic import atomic_write, full_suffix
    from .dicom_seg import map_frames_to_slices, write_dicom_seg
    from .errors import GeometryMismatchError, ImageReadError
    from .labelmap import write_labelmap
    from .masks import to_label_map
    from .preview import render_preview
    from .plausibility import ImplausibleInputError, InputCheck, check_ct_values, check_file_complete
    from .reading import LoadedImage, read_ct
    from .seg_nrrd import read_seg_nrrd, read_seg_nrrd_segments, write_seg_nrrd
    from .statistics import structure_statistics, write_statistics
