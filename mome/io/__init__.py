"""Reading CTs and writing segmentation results (label maps, .seg.nrrd, DICOM-SEG, stats, previews).

All images are SimpleITK images in LPS physical space; all masks are boolean numpy arrays in
SimpleITK array order (z, y, x) on the grid of the image they were computed from. Every writer
writes atomically (see :mod:`mome.io.atomic`). Nothing here imports Slicer or Qt.
"""

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

__all__ = [
    "GeometryMismatchError",
    "Grid",
    "ImageReadError",
    "LoadedImage",
    "assert_same_grid",
    "atomic_write",
    "copy_grid",
    "full_suffix",
    "image_from_array",
    "intensity_warning",
    "map_frames_to_slices",
    "parse_terminology_entry",
    "read_ct",
    "read_seg_nrrd",
    "render_preview",
    "resample_to_reference",
    "same_grid",
    "structure_statistics",
    "terminology_entry",
    "to_label_map",
    "write_dicom_seg",
    "write_labelmap",
    "write_seg_nrrd",
    "write_statistics",
]
