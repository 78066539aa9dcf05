"""The qualitative figure (benchmarks/figure_qualitative.py) on a synthetic accuracy-benchmark folder."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from benchmarks.figure_qualitative import draw
from tests.synthetic import ellipsoid_case


def _work_folder(root: Path, seed: int, models: dict[str, np.ndarray]) -> Path:
    image, label = ellipsoid_case(seed=seed)
    test = root / f"cohort_seed{seed}" / "test"
    (test / "images").mkdir(parents=True)
    (test / "labels").mkdir()
    sitk.WriteImage(image, str(test / "images" / "test_000_0000.nii.gz"))
    sitk.WriteImage(label, str(test / "labels" / "test_000.nii.gz"))
    for name, prediction in models.items():
        folder = root / "predictions" / f"seed{seed}" / name
        folder.mkdir(parents=True)
        out = sitk.GetImageFromArray(prediction.astype(np.uint8))
        out.CopyInformation(label)
        sitk.WriteImage(out, str(folder / "test_000.nii.gz"))
    return root


@pytest.mark.parametrize("method", ["geodesic", "extremes"])
def test_the_figure_shows_the_models_found_in_the_folder(tmp_path: Path, method: str) -> None:
    truth = sitk.GetArrayFromImage(ellipsoid_case(seed=3)[1])
    work = _work_folder(tmp_path / "work", 3, {"nnUNetTrainerPASeg": truth,
                                                   "nnUNetTrainerPASeg_pCE": np.zeros_like(truth)})
    out = tmp_path / "figure.png"
    shown = draw(work, 3, "test_000", out, method)
    assert sorted(shown) == ["nnUNetTrainerPASeg", "nnUNetTrainerPASeg_pCE"]
    assert out.stat().st_size > 1000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_that_is_not_a_benchmark_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="cohort_seed0"):
        draw(tmp_path, 0, "test_000", tmp_path / "figure.png")
