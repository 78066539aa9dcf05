"""Geodesic pseudo-labels (point_tools.geodesic) on synthetic shapes with a known answer."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from point_tools.clicks import ClickError, ObjectClicks
from point_tools.geodesic import combine_objects, geodesic_pseudo_label, minimum_intensity_mask
from point_tools.quality import pseudo_label_quality
from point_tools.simulate import simulate_clicks
from tests.synthetic import ellipsoid_case


def case_arrays(**kwargs) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    image, mask = ellipsoid_case(**kwargs)
    return sitk.GetArrayFromImage(image)[None], sitk.GetArrayFromImage(mask), image.GetSpacing()[::-1]


def outside_boxes(shape, objects) -> np.ndarray:
    outside = np.ones(shape, bool)
    for obj in objects:
        low, high = obj.box()
        outside[tuple(slice(lo, h + 1) for lo, h in zip(low, high))] = False
    return outside


def test_bright_ellipsoid_is_found_with_perfect_precision():
    image, mask, spacing = case_arrays()
    objects = simulate_clicks(mask, spacing)
    label = geodesic_pseudo_label(image, spacing, objects, device="cpu")
    quality = pseudo_label_quality(label, mask, ignore_value=2)
    assert quality["fg_precision"] == 1.0 and quality["bg_precision"] == 1.0
    assert quality["fg_recall"] > 0.5
    assert label.dtype == np.uint8 and set(np.unique(label)) <= {0, 1, 2}
    outside = outside_boxes(mask.shape, objects)
    assert np.all(label[outside] == 0)
    inside_not_fg = ~outside & (mask == 0)
    assert np.all(label[inside_not_fg] == 2)  # no empty voxel inside the box here: all unlabelled


def test_anisotropic_spacing():
    image, mask, spacing = case_arrays(shape=(14, 40, 36), radii=(3, 9, 8), spacing=(0.9, 1.0, 3.0))
    objects = simulate_clicks(mask, spacing)
    quality = pseudo_label_quality(geodesic_pseudo_label(image, spacing, objects, device="cpu"), mask, 2)
    assert quality["fg_precision"] == 1.0 and quality["fg_recall"] > 0.5


def test_euclidean_limit_is_a_ball_in_mm():
    # lamb = 0 and no background seeds: foreground = within threshold * max distance of the click, in mm
    spacing = (3.0, 1.0, 1.0)
    image = np.full((1, 21, 61, 61), 5.0, np.float32)
    image[0, 0, 0, 0] = 0.0
    obj = ObjectClicks((10, 30, 30), ((0, 30, 30), (20, 30, 30), (10, 0, 30), (10, 60, 30), (10, 30, 0), (10, 30, 60)))
    label = geodesic_pseudo_label(image, spacing, [obj], lamb=0.0, threshold=0.3, background_seeds=False,
                                  device="cpu")
    z, y, x = np.nonzero(label == 1)
    extents_mm = [(v.max() - v.min() + 1) * s for v, s in zip((z, y, x), spacing)]
    assert abs(extents_mm[1] - extents_mm[2]) <= 1 and abs(extents_mm[0] - extents_mm[1]) <= 3


def test_two_channels_contrast_in_either_channel():
    image, mask, spacing = case_arrays()
    flat = np.full(image.shape, 100.0, np.float32)
    inverted = image.max() - image
    objects = simulate_clicks(mask, spacing)
    first, second = (geodesic_pseudo_label(channels, spacing, objects, device="cpu")
                     for channels in (np.concatenate([image, flat]), np.concatenate([flat, image])))
    np.testing.assert_array_equal(first, second)  # the channel order does not matter
    for label in (first, geodesic_pseudo_label(np.concatenate([image, inverted]), spacing, objects, device="cpu")):
        quality = pseudo_label_quality(label, mask, 2)
        assert quality["fg_precision"] == 1.0 and quality["fg_recall"] > 0.3


def test_minimum_intensity_voxels_are_background_only_when_minimal_in_every_channel_and_outside():
    image, mask, spacing = case_arrays()
    objects = simulate_clicks(mask, spacing)
    low, high = objects[0].box()
    corner = low  # a box corner: inside the box, outside the ellipsoid
    two = np.concatenate([image, image + 1.0])
    minimum = two.min(axis=(1, 2, 3))[:, None]
    # minimal in both channels on a column from the image's face to the corner: the empty outside of the body
    two[:, :corner[0] + 1, corner[1], corner[2]] = minimum
    beside = (corner[0], corner[1], corner[2] + 1)
    two[0][beside] = two[0].min()  # minimal in one channel only
    hole = (corner[0] + 1, corner[1] + 2, corner[2] + 2)
    two[(slice(None),) + hole] = minimum[:, 0]  # minimal in both channels, but enclosed: no evidence either way
    label = geodesic_pseudo_label(two, spacing, objects, device="cpu")
    assert label[corner] == 0
    assert label[beside] == 2
    assert label[hole] == 2


def test_minimum_intensity_mask_keeps_only_what_reaches_a_face():
    image = np.ones((1, 6, 7, 8), np.float32)
    image[0, 2:4, 2:5, 3:6] = 0  # an enclosed hole at the minimum
    image[0, :, 0, 0] = 0  # an edge of the image at the minimum
    image[0, 3, 3, 1:3] = 0  # touches the hole, not a face
    at_minimum = minimum_intensity_mask(image)
    assert at_minimum[:, 0, 0].all() and at_minimum.sum() == 6
    image[0, 3, 3, 0] = 0  # now the hole reaches the face x = 0
    assert minimum_intensity_mask(image).sum() == 6 + 2 * 3 * 3 + 3


def test_multi_class_objects_and_overlap_rules():
    image, mask, spacing = case_arrays(shape=(32, 40, 56), centre=(15.5, 19.5, 18), radii=(6, 7, 7))
    second, mask2, _ = case_arrays(shape=(32, 40, 56), centre=(15.5, 19.5, 33), radii=(6, 7, 7), seed=1)
    both = np.maximum(image, second)
    truth = mask + 2 * mask2
    objects = simulate_clicks(truth, spacing, margin_mm=3.0)
    assert [o.label for o in objects] == [1, 2]
    assert objects[0].box()[1][2] > objects[1].box()[0][2]  # the two boxes overlap
    label = geodesic_pseudo_label(both, spacing, objects, num_classes=2, device="cpu")
    quality = pseudo_label_quality(label, truth, ignore_value=3)
    assert quality["per_class"][1]["precision"] == 1.0 and quality["per_class"][2]["precision"] == 1.0
    assert quality["per_class"][1]["recall"] > 0.5 and quality["per_class"][2]["recall"] > 0.5
    assert set(np.unique(label)) == {0, 1, 2, 3}


def test_combine_objects_overlap_rules():
    shape = (1, 1, 6)
    box_a = (slice(0, 1), slice(0, 1), slice(0, 4))   # x 0..3
    box_b = (slice(0, 1), slice(0, 1), slice(2, 6))   # x 2..5
    fg_a = np.array([[[True, False, True, True]]])    # x 0, 2, 3
    fg_b = np.array([[[True, True, False, False]]])   # x 2, 3
    at_minimum = np.zeros(shape, bool)
    different = combine_objects(shape, [(box_a, fg_a, 1), (box_b, fg_b, 2)], at_minimum, 2)
    assert different.ravel().tolist() == [1, 3, 3, 3, 3, 3]  # x 2, 3 claimed by two classes -> ignore
    same = combine_objects(shape, [(box_a, fg_a, 1), (box_b, fg_b, 1)], at_minimum, 1)
    assert same.ravel().tolist() == [1, 2, 1, 1, 2, 2]  # foreground wins over the other box's unlabelled
    fg_c = np.array([[[False, False, True, False]]])  # x 4, only in box b
    box_c = (slice(0, 1), slice(0, 1), slice(2, 6))
    third = combine_objects((1, 1, 8), [(box_a, fg_a, 1), (box_c, fg_c, 1)], np.zeros((1, 1, 8), bool), 1)
    assert third.ravel().tolist() == [1, 2, 1, 1, 1, 2, 0, 0]  # outside every box: background


def test_bad_input_is_named():
    image, mask, spacing = case_arrays()
    objects = simulate_clicks(mask, spacing)
    broken = image.copy()
    broken[0, 5, 5, 5] = np.nan
    with pytest.raises(ValueError, match="case_7: .*NaN"):
        geodesic_pseudo_label(broken, spacing, objects, device="cpu", source="case_7")
    with pytest.raises(ClickError, match="case_7: object 1 has class 2"):
        geodesic_pseudo_label(image, spacing, [ObjectClicks(objects[0].foreground, objects[0].background, 2)],
                              device="cpu", source="case_7")
    with pytest.raises(ClickError, match="case_7"):
        geodesic_pseudo_label(image, spacing, [], device="cpu", source="case_7")
    with pytest.raises(ValueError, match="shape"):
        geodesic_pseudo_label(image[0], spacing, objects, device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    image, mask, spacing = case_arrays()
    objects = simulate_clicks(mask, spacing)
    cpu = geodesic_pseudo_label(image, spacing, objects, device="cpu")
    cuda = geodesic_pseudo_label(image, spacing, objects, device="cuda")
    assert np.mean(cpu != cuda) < 1e-3  # raster-scan order differs between the two back ends
