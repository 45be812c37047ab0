"""Geometry shared by training, inference and the writers: the voxel grid, the model grid, the one
resampler, the bounding box, intensity scaling and the network's array layout.

Training and inference must prepare images identically (a flip between the two would swap left
and right organs), so both go through these functions; nothing above this package computes a
grid, resamples, or swaps axes on its own.
"""

from .box import bounding_box, label_boxes
from .grid import GeometryMismatchError, Grid, GridLike, assert_same_grid, grid_differences, same_grid
from .intensity import AIR_HU, scale_intensity
from .layout import from_network_layout, network_array, to_network_layout
from .model_grid import model_grid, oriented_direction
from .resample import resample

__all__ = [
    "AIR_HU",
    "GeometryMismatchError",
    "Grid",
    "GridLike",
    "assert_same_grid",
    "bounding_box",
    "label_boxes",
    "from_network_layout",
    "grid_differences",
    "model_grid",
    "network_array",
    "oriented_direction",
    "resample",
    "same_grid",
    "scale_intensity",
    "to_network_layout",
]
