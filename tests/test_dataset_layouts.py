"""The converters of the paper's datasets on small synthetic stand-ins that follow the published layouts."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_cli
from dataset_conversion.brats2019 import convert_brats, main as brats_main
from dataset_conversion.errors import DatasetInputError
from dataset_conversion.vs_tcia import convert_vs
from point_tools.io_volume import write_annotation_volume
from point_tools.simulate import simulate_clicks
from synthetic import ellipsoid_case


def _write(array: np.ndarray, reference: sitk.Image, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def _read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def vs_layout(root: Path, split: dict[str, str], extra: tuple[str, ...] = ()) -> Path:
    """PA-Seg's VS folders (image_crop/, label_crop/, annotation_7points/) and split CSV; returns the CSV."""
    for n, case in enumerate([*split, *extra]):
        image, mask = ellipsoid_case(shape=(16, 30, 28), radii=(4, 5, 5), seed=n, spacing=(0.45, 0.45, 1.5))
        sitk.WriteImage(image, str(_mkdir(root / "image_crop") / f"{case}_T2.nii.gz"))
        sitk.WriteImage(mask, str(_mkdir(root / "label_crop") / f"{case}_Label.nii.gz"))
        objects = simulate_clicks(sitk.GetArrayFromImage(mask), image.GetSpacing()[::-1])
        write_annotation_volume(objects, image, _mkdir(root / "annotation_7points") / f"{case}_7points.nii.gz")
    split_file = root / "split_VS.csv"
    split_file.write_text("".join(f"{case},{phase}\n" for case, phase in split.items()))
    return split_file


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_vs_layout(nnunet_env, tmp_path):
    root = tmp_path / "VS"
    split = vs_layout(root, {"vs_gk_1": "training", "vs_gk_2": "validation", "vs_gk_3": "inference"},
                      extra=("vs_gk_4",))
    proc = run_cli("paseg_convert_vs", "-i", root, "--split", split, "-d", "502")
    assert "vs_gk_4" in proc.stdout  # not in the split: left out, and said so
    out = nnunet_env["nnUNet_raw"] / "Dataset502_VS"
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "schwannoma": 1, "ignore": 2}
    assert (meta["numTraining"], meta["channel_names"]) == (2, {"0": "T2"})
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == ["vs_gk_1_0000.nii.gz", "vs_gk_2_0000.nii.gz"]
    assert sorted(p.name for p in (out / "labelsTr").iterdir()) == ["vs_gk_1.nii.gz", "vs_gk_2.nii.gz"]
    assert [p.name for p in (out / "imagesTs").iterdir()] == ["vs_gk_3_0000.nii.gz"]
    truth = _read(root / "label_crop" / "vs_gk_3_Label.nii.gz")
    assert np.array_equal(_read(out / "labelsTs" / "vs_gk_3.nii.gz"), truth)
    assert set(np.unique(_read(out / "labelsTr" / "vs_gk_1.nii.gz"))) == {0, 1, 2}
    report = json.loads((out / "pseudo_label_quality.json").read_text())
    assert set(report["cases"]) == {"vs_gk_1", "vs_gk_2"} and report["summary"]["fg_precision"]["mean"] > 0.95


def test_vs_missing_clicks_and_bad_split(nnunet_env, tmp_path):
    root = tmp_path / "VS"
    split = vs_layout(root, {"vs_gk_1": "training", "vs_gk_2": "training"})
    (root / "annotation_7points" / "vs_gk_2_7points.nii.gz").unlink()
    split.write_text(split.read_text() + "vs_gk_9,holdout\n")
    with pytest.raises(DatasetInputError) as error:
        convert_vs(root, split, 503)
    message = str(error.value)
    assert "vs_gk_2_7points.nii.gz" in message and "case vs_gk_2" in message
    assert "split_VS.csv: line 3" in message and "holdout" in message
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def brats_case(root: Path, points: Path, case: str, seed: int, two_tumours: bool = False) -> None:
    """A BraTS-like case folder: four modalities, seg with labels 1/2/4, 7-point clicks in ``points``."""
    flair, mask = ellipsoid_case(shape=(20, 32, 30), centre=(9.5, 10, 14.5), radii=(5, 5, 5), seed=seed)
    seg = sitk.GetArrayFromImage(mask).astype(np.uint8) * 2  # oedema
    core = ellipsoid_case(shape=(20, 32, 30), centre=(9.5, 10, 14.5), radii=(2, 2, 2))[1]
    seg[sitk.GetArrayFromImage(core) > 0] = 4  # enhancing
    arr = sitk.GetArrayFromImage(flair)
    if two_tumours:
        other_image, other = ellipsoid_case(shape=(20, 32, 30), centre=(9.5, 23, 14.5), radii=(4, 4, 4), seed=seed)
        inside = sitk.GetArrayFromImage(other) > 0
        seg[inside] = 1
        arr[inside] = sitk.GetArrayFromImage(other_image)[inside]
    folder = root / "HGG" / case
    for n, modality in enumerate(("flair", "t1", "t1ce", "t2")):
        _write(arr * (1 + n / 4), flair, folder / f"{case}_{modality}.nii.gz")
    _write(seg, flair, folder / f"{case}_seg.nii.gz")
    objects = simulate_clicks((seg > 0).astype(np.uint8), flair.GetSpacing()[::-1])
    assert len(objects) == (2 if two_tumours else 1)
    points.mkdir(parents=True, exist_ok=True)
    write_annotation_volume(objects, flair, points / f"{case}_7points.nii.gz")


@pytest.fixture
def brats_root(tmp_path) -> tuple[Path, Path]:
    root, points = tmp_path / "MICCAI_BraTS_2019_Data_Training", tmp_path / "annotation_7points"
    for n, case in enumerate(("BraTS19_A_1", "BraTS19_B_1", "BraTS19_C_1")):
        brats_case(root, points, case, n, two_tumours=n == 0)
    return root, points


def test_brats_flair_with_split(nnunet_env, tmp_path, brats_root):
    root, points = brats_root
    split = tmp_path / "split_BraTS.csv"
    split.write_text("BraTS19_A_1,training\nBraTS19_B_1,validation\nBraTS19_C_1,inference\n")
    brats_main(["-i", str(root), "--points", str(points), "--split", str(split), "-d", "504"])
    out = nnunet_env["nnUNet_raw"] / "Dataset504_BraTS2019"
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "FLAIR"} and meta["labels"]["whole_tumour"] == 1
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == ["BraTS19_A_1_0000.nii.gz",
                                                                     "BraTS19_B_1_0000.nii.gz"]
    source = root / "HGG" / "BraTS19_A_1" / "BraTS19_A_1_flair.nii.gz"
    assert (out / "imagesTr" / "BraTS19_A_1_0000.nii.gz").read_bytes() == source.read_bytes()
    # both tumours of the two-object case (click values 1/2 and 3/4) are labelled
    pseudo = _read(out / "labelsTr" / "BraTS19_A_1.nii.gz")
    seg = _read(root / "HGG" / "BraTS19_A_1" / "BraTS19_A_1_seg.nii.gz")
    assert (pseudo[seg == 1] == 1).any() and (pseudo[seg == 4] == 1).any()
    # whole tumour: labels 1, 2 and 4 are one foreground class in labelsTs and in the quality report
    truth = _read(out / "labelsTs" / "BraTS19_C_1.nii.gz")
    assert np.array_equal(truth, (_read(root / "HGG" / "BraTS19_C_1" / "BraTS19_C_1_seg.nii.gz") > 0).astype(np.uint8))
    report = json.loads((out / "pseudo_label_quality.json").read_text())
    assert report["cases"]["BraTS19_A_1"]["fg_precision"] > 0.95


def test_brats_all_modalities_test_fraction(nnunet_env, brats_root):
    root, points = brats_root
    for case in ("BraTS19_A_1", "BraTS19_B_1", "BraTS19_C_1"):  # clicks beside the images, as also allowed
        (points / f"{case}_7points.nii.gz").rename(root / "HGG" / case / f"{case}_7points.nii.gz")
    out = convert_brats(root, 505, modalities="all", test_fraction=0.34, seed=1)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["channel_names"] == {"0": "FLAIR", "1": "T1", "2": "T1CE", "3": "T2"} and meta["numTraining"] == 2
    test_cases = [p.name for p in (out / "labelsTs").iterdir()]
    assert len(test_cases) == 1 and len(list((out / "imagesTs").iterdir())) == 4
    assert len(list((out / "imagesTr").iterdir())) == 8


def test_brats_unexpected_seg_value(nnunet_env, brats_root):
    root, points = brats_root
    seg_file = root / "HGG" / "BraTS19_B_1" / "BraTS19_B_1_seg.nii.gz"
    seg = _read(seg_file)
    seg[0, 0, 0] = 3  # not a BraTS label
    _write(seg, sitk.ReadImage(str(seg_file)), seg_file)
    with pytest.raises(DatasetInputError) as error:
        convert_brats(root, 506, points_dir=points)
    assert "BraTS19_B_1" in str(error.value) and "BraTS19_B_1_seg.nii.gz" in str(error.value)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []
