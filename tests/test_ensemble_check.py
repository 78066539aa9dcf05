"""Two models' probabilities combined (benchmarks/ensemble_check.py): the mixing rule, and the scores of a mixture of
a model that errs outside an object and one that errs inside, against a label whose truth is known."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from benchmarks.ensemble_check import mixed_segmentation, score_mixtures


def _probabilities(mask: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(2, *spatial): foreground probability ``confidence`` inside ``mask``, 1 - ``confidence`` outside."""
    fg = np.where(mask, confidence, 1.0 - confidence)
    return np.stack([1.0 - fg, fg]).astype(np.float32)


def test_a_mixture_of_an_outer_and_an_inner_model_finds_the_boundary_between(tmp_path: Path) -> None:
    zz, yy, xx = np.mgrid[:24, :24, :24]
    radius = np.sqrt((zz - 12) ** 2 + (yy - 12) ** 2 + (xx - 12) ** 2)
    truth = radius <= 7
    # A labels a layer outside the object, B misses a layer inside; each is least sure one voxel from its surface
    depth_a = ndimage.distance_transform_edt(radius <= 8) + ndimage.distance_transform_edt(radius > 8)
    depth_b = ndimage.distance_transform_edt(radius <= 6) + ndimage.distance_transform_edt(radius > 6)
    prob_a = _probabilities(radius <= 8, np.clip(0.5 + 0.2 * depth_a, 0.5, 0.99))
    prob_b = _probabilities(radius <= 6, np.clip(0.5 + 0.2 * depth_b, 0.5, 0.99))
    for name, prob in (("a", prob_a), ("b", prob_b)):
        (tmp_path / name).mkdir()
        np.savez_compressed(tmp_path / name / "case_000.npz", probabilities=prob)
    (tmp_path / "labels").mkdir()
    image = sitk.GetImageFromArray(truth.astype(np.uint8))
    image.SetSpacing((2.0, 2.0, 2.0))
    sitk.WriteImage(image, str(tmp_path / "labels" / "case_000.nii.gz"))

    out = score_mixtures(tmp_path / "a", tmp_path / "b", tmp_path / "labels", [0.0, 0.5, 1.0], ["object"])
    a, b, both = (out[w]["object"] for w in (1.0, 0.0, 0.5))
    assert a["recall"] == 1.0 and a["precision"] < 0.8 and b["precision"] == 1.0 and b["recall"] < 0.8
    assert both["Dice"] > max(a["Dice"], b["Dice"]) and both["Dice"] > 0.9
    assert 2.0 <= a["HD95"] <= 3.0 and 2.0 <= b["HD95"] <= 3.0  # about one 2 mm voxel off the surface
    assert both["HD95"] < min(a["HD95"], b["HD95"])


def test_mixing_rule_and_its_checks() -> None:
    a, b = np.array([[0.9, 0.2], [0.1, 0.8]]), np.array([[0.4, 0.6], [0.6, 0.4]])
    assert mixed_segmentation(a, b, 1.0).tolist() == [0, 1] and mixed_segmentation(a, b, 0.0).tolist() == [1, 0]
    assert mixed_segmentation(a, b, 0.5).tolist() == [0, 1]
    with pytest.raises(ValueError, match="different shapes"):
        mixed_segmentation(a, b[:, :1], 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        mixed_segmentation(a, b, 1.5)
