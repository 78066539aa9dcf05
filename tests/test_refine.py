"""Refined pseudo-labels (point_tools.refine, point_tools.pseudo_labels) on synthetic objects with a known answer."""
from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from scipy import ndimage

from point_tools.clicks import ClickError, ObjectClicks
from point_tools.geodesic import geodesic_pseudo_label
from point_tools.pseudo_labels import METHODS, check_method, pseudo_label
from point_tools.quality import pseudo_label_quality
from point_tools.refine import (intensity_log_odds, intensity_overlap, probability_share, refine_foreground,
                                refined_pseudo_label)
from point_tools.simulate import simulate_clicks
from tests.synthetic import ellipsoid_case


def case_arrays(**kwargs) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    image, mask = ellipsoid_case(**kwargs)
    return sitk.GetArrayFromImage(image)[None], sitk.GetArrayFromImage(mask), image.GetSpacing()[::-1]


def quality(label: np.ndarray, mask: np.ndarray) -> dict:
    return pseudo_label_quality(label, mask, ignore_value=2)


# A noisy object (contrast 120, noise 20): the geodesic rule stops short of its edges, the intensity model does not.
NOISY = dict(noise=20.0)


@pytest.mark.parametrize("jitter_mm", [0.0, 2.0])
def test_noisy_ellipsoid_twice_the_recall_at_full_precision(jitter_mm):
    image, mask, spacing = case_arrays(**NOISY)
    objects = simulate_clicks(mask, spacing, jitter_mm=jitter_mm, seed=1)
    geodesic = quality(geodesic_pseudo_label(image, spacing, objects, device="cpu"), mask)
    refined = quality(refined_pseudo_label(image, spacing, objects, device="cpu"), mask)
    assert refined["fg_precision"] >= 0.99 and refined["bg_precision"] == 1.0
    assert refined["fg_recall"] >= 0.6 and refined["fg_recall"] >= 1.5 * geodesic["fg_recall"], (geodesic, refined)


def test_clean_shapes_keep_full_precision():
    for kwargs in (dict(), dict(shape=(14, 40, 36), radii=(3, 9, 8), spacing=(0.9, 1.0, 3.0)),
                   dict(shape=(32, 40, 36), radii=(5, 16, 6))):  # round, anisotropic, elongated
        image, mask, spacing = case_arrays(**kwargs)
        objects = simulate_clicks(mask, spacing)
        q = quality(refined_pseudo_label(image, spacing, objects, device="cpu"), mask)
        assert q["fg_precision"] == 1.0 and q["bg_precision"] == 1.0 and q["fg_recall"] > 0.9, (kwargs, q)


def test_same_intensity_neighbour_in_the_box_is_not_taken():
    # a second bright blob inside the first object's box, separated by a dark gap: object-like intensity, but
    # nearer the box faces than the click and not reachable through object-like intensities
    image, mask, spacing = case_arrays(shape=(32, 48, 36), centre=(15.5, 20, 17.5), radii=(7, 9, 8), **NOISY)
    objects = simulate_clicks(mask, spacing)
    low, high = objects[0].box()
    blob = np.zeros(mask.shape, bool)
    blob[low[0] + 1:low[0] + 3, high[1] - 2:high[1], low[2] + 1:low[2] + 3] = True  # a corner of the box
    assert not (ndimage.binary_dilation(blob) & (mask > 0)).any()  # with a gap between them
    image[0][blob] = 200.0
    label = refined_pseudo_label(image, spacing, objects, device="cpu")
    assert not (label[blob] == 1).any()
    assert quality(label, mask)["fg_precision"] >= 0.99


def test_contrast_in_the_second_channel_only():
    image, mask, spacing = case_arrays(**NOISY)
    flat = np.full(image.shape, 100.0, np.float32) + np.random.default_rng(3).normal(0, 5, image.shape).astype(
        np.float32)
    objects = simulate_clicks(mask, spacing)
    channels = np.concatenate([flat, image])
    geodesic = quality(geodesic_pseudo_label(channels, spacing, objects, device="cpu"), mask)
    refined = quality(refined_pseudo_label(channels, spacing, objects, device="cpu"), mask)
    assert refined["fg_precision"] >= 0.99 and refined["fg_recall"] >= 0.6, refined
    assert refined["fg_recall"] >= 1.5 * geodesic["fg_recall"], (geodesic, refined)


def test_clicked_voxel_is_foreground_whatever_its_intensity():
    image, mask, spacing = case_arrays(**NOISY)
    objects = simulate_clicks(mask, spacing)
    click = objects[0].foreground
    image[(0, *click)] = 0.0  # a dark clicked voxel: the intensity model calls it background; the click wins
    assert refined_pseudo_label(image, spacing, objects, device="cpu")[click] == 1


def test_multi_class_objects():
    image, mask, spacing = case_arrays(shape=(32, 40, 56), centre=(15.5, 19.5, 18), radii=(6, 7, 7), **NOISY)
    second, mask2, _ = case_arrays(shape=(32, 40, 56), centre=(15.5, 19.5, 37), radii=(6, 7, 7), seed=1, **NOISY)
    truth = mask + 2 * mask2
    objects = simulate_clicks(truth, spacing)
    both = np.maximum(image, second)
    label = refined_pseudo_label(both, spacing, objects, num_classes=2, device="cpu")
    assert label[objects[0].foreground] == 1 and label[objects[1].foreground] == 2
    q = pseudo_label_quality(label, truth, ignore_value=3)
    for c in (1, 2):
        assert q["per_class"][c]["precision"] >= 0.99 and q["per_class"][c]["recall"] > 0.5
    outside = np.ones(mask.shape, bool)
    for obj in objects:
        lo, hi = obj.box()
        outside[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = False
    assert np.all(label[outside] == 0)


def test_intensity_log_odds_formula():
    crop = np.zeros((1, 1, 1, 8), np.float32)
    crop[0, 0, 0, :4] = 0.9  # foreground sample
    crop[0, 0, 0, 4:] = 0.1  # background sample
    fg = np.zeros((1, 1, 8), bool)
    fg[..., :4] = True
    r = intensity_log_odds(crop, fg, ~fg, bins=10, smoothing=0.0)
    # unsmoothed: p_fg(bin 9) = (1 - floor) + floor / 10, p_bg(bin 9) = floor / 10
    expected = np.log((1 - 1e-3 + 1e-4) / 1e-4)
    np.testing.assert_allclose(r[..., :4], expected, rtol=1e-5)
    np.testing.assert_allclose(r[..., 4:], -expected, rtol=1e-5)
    same = intensity_log_odds(crop, fg | ~fg, fg | ~fg)
    np.testing.assert_array_equal(same, 0.0)
    two = intensity_log_odds(np.concatenate([crop, crop]), fg, ~fg, bins=10, smoothing=0.0)
    np.testing.assert_allclose(two, 2 * r, rtol=1e-5)  # naive Bayes: the channels' evidence adds up


def test_intensity_overlap_decides_the_peel():
    crop = np.zeros((1, 1, 1, 8), np.float32)
    crop[0, 0, 0, :4] = 0.9
    crop[0, 0, 0, 4:] = 0.1
    fg = np.zeros((1, 1, 8), bool)
    fg[..., :4] = True
    assert intensity_overlap(crop, fg, ~fg) < 0.1  # apart: the grown surface is kept
    assert intensity_overlap(crop, fg, fg) == pytest.approx(1.0)  # the same density
    # two objects, one well apart from its surround (kept whole), one hardly (peeled): same shapes otherwise
    rng = np.random.default_rng(0)
    score = np.full((12, 12, 12), 0.65, np.float32)
    score[3:9, 3:9, 3:9] = 0.5
    score[5:7, 5:7, 5:7] = 0.1
    seeds = np.zeros(score.shape, bool)
    seeds[0] = True
    inside = score < 0.6
    for contrast, peeled in ((1.0, False), (0.05, True)):
        crop = (0.3 + contrast * 0.5 * inside + rng.normal(0, 0.02, score.shape))[None].astype(np.float32)
        unpeeled = refine_foreground(crop, score, seeds, [1 / 12] * 3, max_share=0.6, share_threshold=0.5, erode=0)
        grown = refine_foreground(crop, score, seeds, [1 / 12] * 3, max_share=0.6, share_threshold=0.5)
        assert unpeeled[3, 5, 5] and grown[3, 5, 5] != peeled and grown[5, 5, 5], contrast  # a surface voxel; core


def test_probability_share_stops_at_intensity_edges():
    log_odds = np.full((1, 1, 20), 10.0, np.float32)
    log_odds[..., 12:] = -10.0  # object-like up to x = 11
    core = np.zeros((1, 1, 20), bool)
    core[..., 2] = True
    seeds = np.zeros_like(core)
    seeds[..., 19] = True
    q = probability_share(log_odds, core, seeds, [1.0, 1.0, 1 / 20], lamb=0.98)
    assert q[..., 2] == 0.0 and q[..., 19] == 1.0
    assert np.all(q[..., :12] < 0.2) and np.all(q[..., 12:] > 0.8)


def test_refine_foreground_keeps_the_core_and_needs_samples():
    crop = np.random.default_rng(0).random((1, 6, 6, 6)).astype(np.float32)
    score = np.full((6, 6, 6), 0.3, np.float32)  # all core, no surround: nothing to learn, the core is returned
    seeds = np.zeros((6, 6, 6), bool)
    seeds[0] = True
    np.testing.assert_array_equal(refine_foreground(crop, score, seeds, [1 / 6] * 3), score < 0.4)
    score[3:] = 0.9
    grown = refine_foreground(crop, score, seeds, [1 / 6] * 3)
    assert grown[score < 0.4].all()


@pytest.mark.parametrize("call, match", [
    (lambda c, s, b: refine_foreground(c, s[:-1], b, [0.1] * 3), "same box"),
    (lambda c, s, b: refine_foreground(c, s, b, [0.1] * 3, threshold=0.8, max_share=0.7), "max_share"),
    (lambda c, s, b: refine_foreground(c, s, b, [0.1] * 3, share_threshold=0.0), "share_threshold"),
    (lambda c, s, b: refine_foreground(c, s, b, [0.1] * 3, lamb=1.5), "lamb"),
    (lambda c, s, b: refine_foreground(c, s, b, [0.1] * 3, erode=-1), "erode"),
    (lambda c, s, b: intensity_log_odds(c, s < 0, s >= 0), "at least one voxel"),
    (lambda c, s, b: intensity_log_odds(c[0], s < 0.5, s >= 0.5), "same box"),
])
def test_refine_bad_arguments(call, match):
    crop = np.zeros((1, 4, 4, 4), np.float32)
    score = np.linspace(0, 1, 64, dtype=np.float32).reshape(4, 4, 4)
    with pytest.raises(ValueError, match=match):
        call(crop, score, np.zeros((4, 4, 4), bool))


def test_bad_input_is_named_as_for_the_geodesic_method():
    image, mask, spacing = case_arrays()
    objects = simulate_clicks(mask, spacing)
    broken = image.copy()
    broken[0, 5, 5, 5] = np.inf
    for method in METHODS:
        with pytest.raises(ValueError, match="case_7: .*NaN or infinite"):
            pseudo_label(broken, spacing, objects, method=method, device="cpu", source="case_7")
        with pytest.raises(ClickError, match="case_7: object 1 has class 2"):
            pseudo_label(image, spacing, [ObjectClicks(objects[0].foreground, objects[0].background, 2)],
                         method=method, device="cpu", source="case_7")
        with pytest.raises(ClickError, match="case_7: no clicks"):
            pseudo_label(image, spacing, [], method=method, device="cpu", source="case_7")
        with pytest.raises(ValueError, match="spacing"):
            pseudo_label(image, (1.0, 0.0, 1.0), objects, method=method, device="cpu")
    with pytest.raises(ValueError, match="unknown pseudo-label method 'grabcut'; choose one of geodesic, refined"):
        check_method("grabcut")


def test_geodesic_method_by_name_is_unchanged():
    image, mask, spacing = case_arrays(**NOISY)
    objects = simulate_clicks(mask, spacing)
    np.testing.assert_array_equal(pseudo_label(image, spacing, objects, method="geodesic", device="cpu"),
                                  geodesic_pseudo_label(image, spacing, objects, device="cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    image, mask, spacing = case_arrays(**NOISY)
    objects = simulate_clicks(mask, spacing)
    cpu = refined_pseudo_label(image, spacing, objects, device="cpu")
    cuda = refined_pseudo_label(image, spacing, objects, device="cuda")
    assert np.mean(cpu != cuda) < 1e-3  # raster-scan order differs between the two back ends
