"""Where the regularisers put an object's boundary (benchmarks/regulariser_boundary.py), on a synthetic volume with
two classes: one whose surface is a blurred intensity edge and one with its surround's intensity (no edge)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from benchmarks.regulariser_boundary import LEVELS, measure
from tests.test_regulariser_erasure import _write_case

TRAINERS = ["nnUNetTrainerPASeg", "nnUNetTrainerPASeg_noVM"]


def test_each_class_is_measured_against_its_own_edge(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    label = np.zeros((28, 28, 28), np.int16)
    zz, yy, xx = np.mgrid[:28, :28, :28]
    label[(zz - 14) ** 2 + (yy - 8) ** 2 + (xx - 14) ** 2 <= 25] = 1  # the surround's intensity: no edge
    label[(zz - 14) ** 2 + (yy - 20) ** 2 + (xx - 14) ** 2 <= 25] = 2  # dark, a partial-volume edge
    image = ndimage.gaussian_filter(np.where(label == 2, 0.0, 1.0), 1.0) + rng.normal(0.0, 0.02, label.shape)
    _write_case(tmp_path, "case_0", image, label)

    edge = measure(tmp_path, (1.0, 1.0, 1.0), TRAINERS, target_class=2, num_foreground_classes=2)
    labels, paseg, no_vm = edge["labels"][0], edge["nnUNetTrainerPASeg"], edge["nnUNetTrainerPASeg_noVM"]
    assert 0.4 <= labels <= 0.7  # the labels cut near the 50% partial-volume level
    assert abs(paseg["crf"][0] - labels) <= 0.1  # the CRF puts the boundary on the image's edge
    assert paseg["vm"][0] < paseg["crf"][0] and paseg["total"][0] < paseg["crf"][0]  # VM per class pulls it in
    assert no_vm["total"] == no_vm["crf"] == paseg["crf"]

    flat = measure(tmp_path, (1.0, 1.0, 1.0), TRAINERS, target_class=1, num_foreground_classes=2)
    # without an edge the label reaches past every level, and the CRF keeps only the object's core
    assert flat["labels"] == [max(LEVELS)] and flat["nnUNetTrainerPASeg"]["crf"] == [min(LEVELS)]
