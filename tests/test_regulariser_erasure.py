"""Whether the stage-1 loss would rather erase a structure (benchmarks/regulariser_erasure.py), on a synthetic
volume with one structure that is an intensity edge and one that is not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.regulariser_erasure import eroded, measure


def _write_case(folder: Path, name: str, image: np.ndarray, seg: np.ndarray) -> None:
    import blosc2

    folder.mkdir(parents=True, exist_ok=True)
    blosc2.asarray(np.ascontiguousarray(image[None].astype(np.float32)), urlpath=str(folder / f"{name}.b2nd"),
                   mode="w")
    blosc2.asarray(np.ascontiguousarray(seg[None].astype(np.int16)), urlpath=str(folder / f"{name}_seg.b2nd"),
                   mode="w")


def test_a_structure_without_an_edge_costs_the_regularisers_more_to_keep(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    label = np.zeros((24, 24, 24), np.int16)
    label[3:11, 3:11, 8:16] = 1    # bright: an edge all round
    label[13:21, 13:21, 8:16] = 2  # the background's intensity: no edge
    image = np.where(label == 1, 3.0, 0.0) + rng.normal(0.0, 0.3, label.shape)
    pseudo = np.full(label.shape, 3, np.int16)  # ignore
    pseudo[:, :, :4] = 0
    pseudo[6:8, 6:8, 11:13] = 1
    pseudo[16:18, 16:18, 11:13] = 2
    _write_case(tmp_path / "full", "case_0", image, label)
    _write_case(tmp_path / "clicks", "case_0", image, pseudo)
    result = measure(tmp_path / "full", tmp_path / "clicks", (1.0, 1.0, 1.0),
                     ["nnUNetTrainerPASeg", "nnUNetTrainerPASeg_pCE"], num_classes=3, ignore_label=3, soften=0.1)
    paseg, pce = result["nnUNetTrainerPASeg"], result["nnUNetTrainerPASeg_pCE"]
    assert paseg[1]["partial"][0] > 0 and paseg[2]["partial"][0] > 0  # the clicks' labels hold both
    assert paseg[2]["reg"][0] < paseg[1]["reg"][0]  # the edge-less structure's surface is what the CRF pays for
    assert pce[1]["reg"] == pce[2]["reg"] == [0.0] and pce[1]["erase"] == pce[2]["erase"] == [False]


def test_eroding_shrinks_each_class_and_keeps_its_value() -> None:
    label = np.zeros((9, 9, 9), np.int64)
    label[1:4, 1:4, 1:4] = 1
    label[4:9, 4:9, 4:9] = 2
    out = eroded(label, 1)
    assert (out == 1).sum() == 1 and (out == 2).sum() == 3 ** 3  # one voxel off each face (the array's edge too)
    assert set(np.unique(out)) == {0, 1, 2} and np.all(out[label == 0] == 0)
    assert eroded(label, 0) is label
