"""The edge measure behind the pseudo-label table's per-structure verdicts (benchmarks/boundary_contrast.py)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks.boundary_contrast import boundary_contrast


def _cube(size: int = 12, low: int = 3, high: int = 9) -> np.ndarray:
    mask = np.zeros((size, size, size), bool)
    mask[low:high, low:high, low:high] = True
    return mask


def test_a_clean_edge_scores_one_and_the_interior_is_the_eroded_cube() -> None:
    mask = _cube()
    result = boundary_contrast(np.where(mask, 100.0, 20.0), mask)
    assert result.edge_auc == pytest.approx(1.0)
    assert result.interior_share == pytest.approx(4 ** 3 / 6 ** 3)
    assert result.voxels == 6 ** 3


def test_a_dark_object_is_an_edge_too() -> None:
    mask = _cube()
    assert boundary_contrast(np.where(mask, 5.0, 80.0), mask).edge_auc == pytest.approx(1.0)


def test_a_label_drawn_on_noise_has_no_edge() -> None:
    mask = _cube(24, 4, 20)
    image = np.random.default_rng(0).normal(50.0, 10.0, mask.shape)
    assert abs(boundary_contrast(image, mask).edge_auc - 0.5) < 0.05


def test_a_blurred_edge_lies_between() -> None:
    from scipy import ndimage

    mask = _cube(24, 4, 20)
    rng = np.random.default_rng(1)
    image = ndimage.gaussian_filter(np.where(mask, 60.0, 40.0), 1.5) + rng.normal(0.0, 4.0, mask.shape)
    assert 0.6 < boundary_contrast(image, mask).edge_auc < 0.99


def test_bad_input_is_refused_by_name() -> None:
    mask = _cube()
    with pytest.raises(ValueError, match="differ in shape"):
        boundary_contrast(np.zeros((3, 3, 3)), mask)
    thin = np.zeros((8, 8, 8), bool)
    thin[4, 2:6, 2:6] = True
    with pytest.raises(ValueError, match="no voxel more than one voxel deep"):
        boundary_contrast(np.zeros(thin.shape), thin)
