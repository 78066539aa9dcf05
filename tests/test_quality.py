"""Pseudo-label quality metrics against full masks, checked on arrays whose counts are known by construction."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from point_tools.quality import format_quality_table, mean_quality, pseudo_label_quality


def _volume(values: list[int]) -> np.ndarray:
    return np.array(values, np.uint8).reshape(1, 1, -1)


def test_binary_metrics_from_counts():
    # truth: 4 foreground voxels (positions 0-3), 6 background (4-9)
    truth = _volume([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    # pseudo (ignore = 2): fg at 0, 1, 4 (2 right, 1 wrong); bg at 3, 7, 8, 9 (3 right, 1 wrong); ignore at 2, 5, 6
    pseudo = _volume([1, 1, 2, 0, 1, 2, 2, 0, 0, 0])
    q = pseudo_label_quality(pseudo, truth, ignore_value=2)
    assert q == {"fg_precision": pytest.approx(2 / 3), "fg_recall": pytest.approx(2 / 4),
                 "bg_precision": pytest.approx(3 / 4), "labelled_share": pytest.approx(7 / 10)}


def test_empty_denominators_are_nan_and_left_out_of_means():
    truth = _volume([0, 0, 0, 0])
    q = pseudo_label_quality(_volume([0, 2, 2, 0]), truth, ignore_value=2)
    assert math.isnan(q["fg_precision"]) and math.isnan(q["fg_recall"])
    assert q["bg_precision"] == 1.0 and q["labelled_share"] == 0.5
    other = pseudo_label_quality(_volume([1, 0, 2, 0]), _volume([1, 1, 0, 0]), ignore_value=2)
    summary = mean_quality([{"case": "a", **q}, {"case": "b", **other}])
    assert summary["fg_precision"] == {"mean": 1.0, "min": 1.0, "n": 1}
    assert summary["bg_precision"] == {"mean": pytest.approx((1.0 + 0.5) / 2), "min": 0.5, "n": 2}


def test_multi_class_per_class_metrics():
    truth = _volume([1, 1, 2, 2, 0, 0])
    # class 1 predicted at 0 (right) and 2 (truth class 2); class 2 at 3 (right); ignore = 3
    pseudo = _volume([1, 3, 1, 2, 0, 3])
    q = pseudo_label_quality(pseudo, truth, ignore_value=3)
    # any-class foreground: 3 pseudo fg voxels, all truly foreground
    assert q["fg_precision"] == 1.0 and q["fg_recall"] == pytest.approx(3 / 4)
    assert q["per_class"] == {1: {"precision": 0.5, "recall": 0.5}, 2: {"precision": 1.0, "recall": 0.5}}
    table = format_quality_table([{"case": "brats_001", **q}])
    assert "c1_prec" in table.splitlines()[0] and "c2_reca" in table.splitlines()[0]


def test_table_lists_cases_mean_and_min_and_survives_json():
    rows = [{"case": "case_1", **pseudo_label_quality(_volume([1, 1, 0, 0]), _volume([1, 0, 0, 0]), 2)},
            {"case": "case_22", **pseudo_label_quality(_volume([2, 2, 2, 2]), _volume([1, 0, 0, 0]), 2)}]
    table = format_quality_table(json.loads(json.dumps(rows)))
    lines = table.splitlines()
    assert [line.split()[0] for line in lines] == ["case", "case_1", "case_22", "mean", "min"]
    assert lines[1].split()[1:] == ["0.5000", "1.0000", "1.0000", "1.0000"]
    assert lines[2].split()[1:] == ["n/a", "0.0000", "n/a", "0.0000"]
    assert lines[3].split()[1:] == ["0.5000", "0.5000", "1.0000", "0.5000"]


@pytest.mark.parametrize("pseudo, truth, ignore, match", [
    (np.zeros((2, 2, 2)), np.zeros((2, 2, 3)), 2, "shape"),
    (np.full((2, 2, 2), 3), np.zeros((2, 2, 2)), 2, "values must lie in 0..2"),
    (np.zeros((2, 2, 2)), np.full((2, 2, 2), -1), 2, "mask values must be >= 0"),
    (np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), 1, "ignore_value must be >= 2"),
])
def test_bad_input(pseudo, truth, ignore, match):
    with pytest.raises(ValueError, match=match):
        pseudo_label_quality(pseudo, truth, ignore)
