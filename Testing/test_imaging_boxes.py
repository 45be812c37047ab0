"""Bounding boxes (mome/imaging/box.py): the boxes of every label in one pass equal each label's own box."""

from __future__ import annotations

import numpy as np

from mome.imaging import bounding_box, label_boxes


def test_label_boxes_equal_each_labels_own_box_and_mark_absent_labels():
    rng = np.random.default_rng(0)
    labels = np.zeros((30, 40, 50), dtype=np.uint8)
    labels[3:9, 10:31, 2:5] = 1
    labels[rng.random(labels.shape) < 0.001] = 3  # scattered voxels: a box spanning most of the array
    labels[20, 39, 49] = 4  # a single voxel in the far corner
    boxes = label_boxes(labels, 5)
    assert len(boxes) == 5
    for value in (1, 3, 4):
        assert boxes[value - 1] == bounding_box(labels == value)
    assert boxes[1] is None and boxes[4] is None  # label 2 absent; 5 above the largest value present
    assert boxes[3] == (slice(20, 21), slice(39, 40), slice(49, 50))
