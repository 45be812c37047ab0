"""Reading CTs and writing segmentation results (label maps, .seg.nrrd, DICOM-SEG, stats, previews).

All images are SimpleITK images in LPS physical space; all masks are boolean numpy arrays in
SimpleITK array order (z, y, x) on the grid of the image they were computed from. Every writer
writes atomically (see :mod:`mome.io.atomic`). Nothing here imports Slicer or Qt.

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
    "Grid": "geometry",
    "assert_same_grid": "geometry",
    "copy_grid": "geometry",
    "image_from_array": "geometry",
    "resample_to_reference": "geometry",
    "same_grid": "geometry",
    "write_labelmap": "labelmap",
    "to_label_map": "masks",
    "render_preview": "preview",
    "LoadedImage": "reading",
    "intensity_warning": "reading",
    "read_ct": "reading",
    "read_seg_nrrd": "seg_nrrd",
    "write_seg_nrrd": "seg_nrrd",
    "structure_statistics": "statistics",
    "write_statistics": "statistics",
    "parse_terminology_entry": "terminology",
    "terminology_entry": "terminology",
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
    from mome.io.atomic import atomic_write, full_suffix
    from mome.io.dicom_seg import map_frames_to_slices, write_dicom_seg
    from mome.io.errors import GeometryMismatchError, ImageReadError
    from mome.io.geometry import (
        Grid,
        assert_same_grid,
        copy_grid,
        image_from_array,
        resample_to_reference,
        same_grid,
    )
    from mome.io.labelmap import write_labelmap
    from mome.io.masks import to_label_map
    from mome.io.preview import render_preview
    from mome.io.reading import LoadedImage, intensity_warning, read_ct
    from mome.io.seg_nrrd import read_seg_nrrd, write_seg_nrrd
    from mome.io.statistics import structure_statistics, write_statistics
    from mome.io.terminology import parse_terminology_entry, terminology_entry
