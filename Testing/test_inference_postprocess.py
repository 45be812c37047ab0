"""Post-processing on synthetic masks: largest component, lesions inside their organ, lung sides,
and probabilities that reproduce the cleaned masks after resampling."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from mome.imaging import Grid
from mome.inference.postprocess import (
    PostprocessOptions,
    constrain_probabilities,
    dilate_ball,
    largest_component,
    postprocess_masks,
)
from mome.inference.resample_back import mask_on_source

SHAPE = (40, 40, 60)  # (z, y, x)
# An RAS grid like the model's: index x runs toward the patient's right, i.e. LPS x decreases.
RAS = Grid(size=(60, 40, 40), spacing=(1.5, 1.5, 1.5), origin=(45.0, 30.0, 0.0),
                direction=(-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0))


@dataclass(frozen=True)
class T:
    key: str
    kind: str = "organ"
    parents: tuple[str, ...] = ()
    laterality: str | None = None


def ball(center_zyx: tuple[int, int, int], radius: float, shape=SHAPE) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (z - center_zyx[0]) ** 2 + (y - center_zyx[1]) ** 2 + (x - center_zyx[2]) ** 2 <= radius**2


def test_largest_component_keeps_the_big_piece_only():
    organ, speck = ball((20, 20, 20), 8), ball((20, 20, 50), 2)
    kept = largest_component(organ | speck)
    assert np.array_equal(kept, organ)
    assert not largest_component(np.zeros(SHAPE, bool)).any()


def test_organs_lose_islands_but_bowel_and_vessels_do_not():
    organ, speck = ball((20, 20, 20), 8), ball((20, 20, 50), 2)
    masks = [organ | speck] * 3
    targets = [T("liver"), T("colon"), T("aorta", kind="vessel")]
    out, notes = postprocess_masks(masks, targets, RAS)
    assert np.array_equal(out[0], organ)
    assert np.array_equal(out[1], organ | speck)  # gas splits bowel: every piece is real
    assert np.array_equal(out[2], organ | speck)
    assert any(n.startswith("liver: kept the largest") for n in notes)
    assert np.array_equal(masks[0], organ | speck)  # inputs untouched


def test_tumour_is_kept_only_inside_its_dilated_organ():
    liver = ball((20, 20, 20), 10)
    inside, edge, far = ball((20, 20, 22), 3), ball((20, 20, 32), 2), ball((20, 20, 52), 3)
    tumour = inside | edge | far
    targets = [T("liver"), T("liver_tumor", kind="tumor", parents=("liver",))]
    out, _ = postprocess_masks([liver, tumour], targets, RAS, PostprocessOptions(lesion_margin_voxels=5))
    assert out[1][inside].all()
    assert out[1][edge].all()  # just outside the organ surface: within the 5-voxel margin
    assert not out[1][far].any()
    # Without its organ in the run there is nothing to check it against: the tumour stays whole.
    alone, _ = postprocess_masks([tumour], targets[1:], RAS)
    assert np.array_equal(alone[0], tumour)


def test_dilate_ball_is_euclidean():
    seed = np.zeros(SHAPE, bool)
    seed[20, 20, 30] = True
    grown = dilate_ball(seed, 5)
    assert grown.sum() == ball((20, 20, 30), 5).sum()


def lungs() -> tuple[np.ndarray, np.ndarray]:
    """(patient-left lung, patient-right lung) on the RAS grid: right = larger index x."""
    return ball((20, 20, 12), 8), ball((20, 20, 48), 8)


def test_lungs_are_reassigned_by_side_of_the_midline():
    left, right = lungs()
    # The model got the sides backwards and leaked a bit of the right lung into "left lung".
    masks = [right | ball((20, 20, 12), 3), left]
    targets = [T("lung_left", laterality="left"), T("lung_right", laterality="right")]
    out, notes = postprocess_masks(masks, targets, RAS, midline=RAS.center()[0])
    assert np.array_equal(out[0], left)
    assert np.array_equal(out[1], right)
    assert notes


def test_a_lung_prompt_alone_keeps_only_its_side():
    left, right = lungs()
    out, _ = postprocess_masks([left | right], [T("lung_left", laterality="left")], RAS)
    assert np.array_equal(out[0], left)


def test_lungs_touching_across_the_midline_are_cut_there():
    left, right = lungs()
    bridge = np.zeros(SHAPE, bool)
    bridge[18:22, 18:22, 12:49] = True
    union = left | right | bridge
    targets = [T("lung_left", laterality="left"), T("lung_right", laterality="right")]
    out, _ = postprocess_masks([union, union], targets, RAS)
    assert not (out[0] & out[1]).any()
    assert np.array_equal(out[0] | out[1], union)
    assert out[0][left].all() and out[1][right].all()


def test_lobes_lose_voxels_on_the_wrong_side_only():
    left, right = lungs()
    upper_left = left.copy()
    upper_left[:, :, 40:] |= right[:, :, 40:]  # leaked into the right lung
    out, _ = postprocess_masks([upper_left], [T("lung_upper_lobe_left", laterality="left")], RAS)
    assert np.array_equal(out[0], left)


def test_every_step_can_be_switched_off():
    organ, speck = ball((20, 20, 20), 8), ball((20, 20, 50), 2)
    masks = [organ | speck]
    for options in (PostprocessOptions(enabled=False), PostprocessOptions(largest_component=False)):
        out, notes = postprocess_masks(masks, [T("liver")], RAS, options)
        assert np.array_equal(out[0], organ | speck) and not notes


@pytest.mark.parametrize("spacing", [1.5, 0.7])
def test_constrained_probabilities_reproduce_the_cleaned_mask(spacing):
    rng = np.random.default_rng(0)
    probabilities = (rng.random(SHAPE) * 120).astype(np.uint8)  # background noise below 0.5
    organ, speck = ball((20, 20, 20), 8), ball((20, 20, 50), 2)
    probabilities[organ | speck] = 200
    cleaned = largest_component(probabilities >= 128)
    constrained = constrain_probabilities(probabilities, cleaned, 128)
    assert np.array_equal(constrained >= 128, cleaned)
    # Resampled to a finer grid over the same box, the removed speck cannot come back.
    target = Grid(
        size=tuple(int(round(n * 1.5 / spacing)) for n in RAS.size), spacing=(spacing,) * 3,
        origin=tuple(RAS.index_to_physical(np.full(3, -0.5 + spacing / 3))[0]), direction=RAS.direction,
    )
    mask = mask_on_source(constrained, RAS, target, 128)
    speck_center = RAS.index_to_physical(np.array([50.0, 20.0, 20.0]))
    index = np.round(target.physical_to_index(speck_center)[0]).astype(int)
    assert not mask[index[2], index[1], index[0]]
    organ_center = np.round(target.physical_to_index(RAS.index_to_physical(np.array([20.0, 20.0, 20.0])))[0]).astype(int)
    assert mask[organ_center[2], organ_center[1], organ_center[0]]
    # Volume is preserved up to boundary interpolation.
    volume = mask.sum() * spacing**3
    assert volume == pytest.approx(cleaned.sum() * 1.5**3, rel=0.15)
