"""Pseudo-labels with the extreme-point constraint (point_tools.extremes) on synthetic objects with a known answer."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from point_tools.clicks import ObjectClicks
from point_tools.extremes import descent_path, extreme_paths, extremes_foreground, extremes_pseudo_label, inward_voxels
from point_tools.pseudo_labels import pseudo_label
from point_tools.quality import pseudo_label_quality
from point_tools.geodesic import box_inputs, geodesic_share
from point_tools.refine import refine_foreground, refined_pseudo_label
from point_tools.simulate import simulate_clicks
from tests.synthetic import ellipsoid_case

# A long, thin, noisy object: its ends lie nearer the box faces than the foreground click, where the geodesic split
# of refined stops; the extreme voxels next to the background clicks on the short faces lie on its axis.
LONG = dict(shape=(24, 48, 24), radii=(4, 18, 5), noise=20.0)


def case_arrays(**kwargs) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    image, mask = ellipsoid_case(**kwargs)
    return sitk.GetArrayFromImage(image)[None], sitk.GetArrayFromImage(mask), image.GetSpacing()[::-1]


@pytest.mark.parametrize("jitter_mm", [0.0, 2.0])
def test_long_object_reaches_its_ends(jitter_mm):
    image, mask, spacing = case_arrays(**LONG)
    objects = simulate_clicks(mask, spacing, jitter_mm=jitter_mm, seed=1)
    refined = pseudo_label_quality(refined_pseudo_label(image, spacing, objects, device="cpu"), mask, ignore_value=2)
    label = extremes_pseudo_label(image, spacing, objects, device="cpu")
    q = pseudo_label_quality(label, mask, ignore_value=2)
    assert q["fg_precision"] >= 0.99 and q["bg_precision"] == 1.0, q
    assert q["fg_recall"] >= 0.95 and q["fg_recall"] >= refined["fg_recall"], (refined, q)
    assert label[objects[0].foreground] == 1
    np.testing.assert_array_equal(label, pseudo_label(image, spacing, objects, method="extremes", device="cpu"))


def test_inward_voxels_step_off_each_face():
    obj = ObjectClicks((5, 5, 5), ((2, 5, 5), (9, 5, 5), (5, 1, 5), (5, 8, 6), (5, 5, 3), (5, 6, 10)))
    # box (2, 1, 3)..(9, 8, 10); in box coordinates each click moves one voxel towards the box
    assert inward_voxels(obj) == [(1, 4, 2), (6, 4, 2), (3, 1, 2), (3, 6, 3), (3, 4, 1), (3, 5, 6)]


def test_descent_path_falls_to_the_seed():
    seed = (2, 3, 4)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in (8, 9, 10)], indexing="ij"))
    distance = np.sqrt(((grid - np.array(seed)[:, None, None, None]) ** 2).sum(0))
    path = descent_path(distance, (7, 8, 0))
    assert tuple(path[0]) == (7, 8, 0) and tuple(path[-1]) == seed
    values = distance[tuple(path.T)]
    assert (np.diff(values) < 0).all()
    assert (np.abs(np.diff(path, axis=0)) <= 1).all()  # 26-connected steps


def test_extreme_paths_need_the_image_to_agree():
    z, y, x = np.meshgrid(np.arange(3), np.arange(3), np.arange(11), indexing="ij")
    distance = (x + 10 * (np.abs(z - 1) + np.abs(y - 1))).astype(np.float32)  # one seed, (1, 1, 0); the path: x
    log_odds = np.ones(distance.shape, np.float32)
    excluded = np.zeros(distance.shape, bool)
    start = (1, 1, 10)
    full = extreme_paths(distance, log_odds, [start], excluded, agreement=0.9, trim=0)
    assert full.sum() == 11 and full[1, 1].all()
    trimmed = extreme_paths(distance, log_odds, [start], excluded, agreement=0.9, trim=3)
    assert trimmed.sum() == 8 and not trimmed[1, 1, 8:].any()
    crossing = log_odds.copy()
    crossing[1, 1, 4:7] = -1.0  # the path crosses 3 background-like voxels of 11: agreement 0.73
    assert not extreme_paths(distance, crossing, [start], excluded, agreement=0.9, trim=0).any()
    assert extreme_paths(distance, crossing, [start], excluded, agreement=0.7, trim=0).sum() == 11
    outside = log_odds.copy()
    outside[start] = -1.0  # the inward voxel itself does not look like the object
    assert not extreme_paths(distance, outside, [start], excluded).any()
    excluded[start] = True  # a background seed (another object's click, a face) is never a start
    assert not extreme_paths(distance, log_odds, [start], excluded).any()


def test_without_agreeing_extremes_it_is_refined():
    image, mask, spacing = case_arrays(noise=20.0)
    obj = simulate_clicks(mask, spacing)[0]
    inputs = box_inputs(image, np.ones(mask.shape, bool), spacing, obj, background_seeds=True)
    crop = inputs.crop * len(inputs.crop)
    refined = refine_foreground(crop, geodesic_share(inputs, 0.5, 1, torch.device("cpu")), inputs.bg_seed,
                                inputs.unit_spacing)
    np.testing.assert_array_equal(extremes_foreground(crop, inputs.fg_seed, inputs.bg_seed, [], inputs.unit_spacing),
                                  refined)
    # the inward voxels of a box corner lie in the dark body: the image disagrees, nothing is added
    corner = [(0, 0, 0), (0, 0, 1), (1, 0, 0)]
    np.testing.assert_array_equal(
        extremes_foreground(crop, inputs.fg_seed, inputs.bg_seed, corner, inputs.unit_spacing), refined)


@pytest.mark.parametrize("kwargs, match", [
    (dict(extreme_threshold=0.0), "extreme_threshold"),
    (dict(agreement=1.5), "agreement"),
    (dict(trim=-1), "trim"),
])
def test_bad_arguments(kwargs, match):
    crop = np.random.default_rng(0).random((1, 8, 8, 8)).astype(np.float32)
    fg = np.zeros((8, 8, 8), bool)
    fg[4, 4, 4] = True
    bg = np.zeros((8, 8, 8), bool)
    bg[0] = bg[-1] = True
    with pytest.raises(ValueError, match=match):
        extremes_foreground(crop, fg, bg, [(1, 4, 4), (6, 4, 4)], [1 / 8] * 3, **kwargs)
    with pytest.raises(ValueError, match="same box"):
        extremes_foreground(crop, fg[:-1], bg, [], [1 / 8] * 3)
