"""The one-voxel band rule of benchmarks/boundary_snap.py: on a blurred object whose label cuts at the 50%
partial-volume level, a prediction one voxel too small grows back and one a voxel too large shrinks back; the
benchmark's folders are read and scored as the accuracy benchmark scores them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from benchmarks.accuracy import dice
from benchmarks.boundary_snap import score_snapped, snap_band


def _blurred_sphere(radius: float = 7.0, shape: int = 32, value: float = 100.0) -> tuple[np.ndarray, np.ndarray]:
    """(image, label): a sphere of ``value`` on 20, blurred by a Gaussian of 1 voxel, and its 50% level as label."""
    zz, yy, xx = np.mgrid[:shape, :shape, :shape]
    sphere = np.sqrt((zz - shape / 2) ** 2 + (yy - shape / 2) ** 2 + (xx - shape / 2) ** 2) <= radius
    image = ndimage.gaussian_filter(np.where(sphere, value, 20.0), 1.0).astype(np.float32)
    return image, (image >= (value + 20.0) / 2).astype(np.uint8)


def test_the_band_moves_to_the_partial_volume_level() -> None:
    image, label = _blurred_sphere()
    truth = label == 1
    small = ndimage.binary_erosion(truth).astype(np.uint8)
    large = ndimage.binary_dilation(truth).astype(np.uint8)
    assert dice(small == 1, truth) < 0.9 and dice(large == 1, truth) < 0.9
    assert dice(snap_band(image, small, "grow") == 1, truth) > 0.98
    # the object's mean is taken inside a prediction that still holds a partial-volume layer: a little low
    assert dice(snap_band(image, large, "shrink") == 1, truth) > 0.97
    assert dice(snap_band(image, large, "both") == 1, truth) > 0.97
    np.testing.assert_array_equal(snap_band(image, small, "shrink"), small)  # nothing of it lies below the level
    np.testing.assert_array_equal(snap_band(image, large, "none"), large)


def test_each_class_against_its_own_surround() -> None:
    image, label = _blurred_sphere(radius=5.0)
    other, other_label = _blurred_sphere(radius=5.0, value=300.0)
    image = np.concatenate([image, other], axis=2)  # a dim and a bright sphere side by side
    truth = np.concatenate([label, 2 * other_label], axis=2)
    prediction = np.zeros_like(truth)
    for c in (1, 2):
        prediction[ndimage.binary_erosion(truth == c)] = c
    snapped = snap_band(image, prediction, "grow")
    for c in (1, 2):
        assert dice(snapped == c, truth == c) > 0.97 > dice(prediction == c, truth == c)


def test_checks() -> None:
    image, label = _blurred_sphere()
    with pytest.raises(ValueError, match="mode"):
        snap_band(image, label, "dilate")
    with pytest.raises(ValueError, match="shape"):
        snap_band(image[1:], label, "grow")


def _write(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))


def test_scores_the_benchmark_folders(tmp_path: Path) -> None:
    image, label = _blurred_sphere()
    large = ndimage.binary_dilation(label == 1).astype(np.uint8)
    test = tmp_path / "cohort_seed3" / "test"
    _write(image, test / "images" / "test_000_0000.nii.gz")
    _write(label, test / "labels" / "test_000.nii.gz")
    _write(large, tmp_path / "predictions" / "seed3" / "T" / "test_000.nii.gz")
    out = score_snapped(tmp_path, 3, "T", ["none", "shrink"], 0.5, ["sphere"])
    assert out["none"]["sphere"]["recall"] == 1.0 and out["none"]["sphere"]["precision"] < 0.8
    assert out["shrink"]["sphere"]["Dice"] > 0.97 > 0.9 > out["none"]["sphere"]["Dice"]
    (tmp_path / "predictions" / "seed3" / "T" / "test_000.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="test_000.nii.gz"):
        score_snapped(tmp_path, 3, "T", ["none"], 0.5, ["sphere"])
