"""The benchmark's own metrics (benchmarks/accuracy.py): Dice and spacing-aware HD95 on shapes with a known answer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import accuracy


def _box(shape, low, high) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in zip(low, high))] = True
    return mask


def test_dice() -> None:
    a = _box((10, 10, 10), (0, 0, 0), (4, 10, 10))
    b = _box((10, 10, 10), (2, 0, 0), (6, 10, 10))
    assert accuracy.dice(a, b) == pytest.approx(0.5)
    assert accuracy.dice(a, a) == 1.0
    assert math.isnan(accuracy.dice(np.zeros_like(a), np.zeros_like(a)))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.5, 0.5)])
def test_hd95_of_a_shifted_box_is_the_shift_in_mm(spacing) -> None:
    truth = _box((30, 30, 30), (8, 8, 8), (20, 20, 20))
    shifted = _box((30, 30, 30), (11, 8, 8), (23, 20, 20))  # 3 voxels along axis 0
    # Every face moves by 3 voxels along axis 0 at most; the shifted end faces are the farthest surfaces.
    assert accuracy.hd95(shifted, truth, spacing) == pytest.approx(3 * spacing[0])
    assert accuracy.hd95(truth, truth, spacing) == 0.0


def test_hd95_of_empty_masks() -> None:
    truth = _box((10, 10, 10), (2, 2, 2), (6, 6, 6))
    empty = np.zeros_like(truth)
    assert math.isnan(accuracy.hd95(empty, truth, (1, 1, 1)))
    assert accuracy.hd95(empty, empty, (1, 1, 1)) == 0.0
