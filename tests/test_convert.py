"""paseg_convert: click-annotated images -> nnU-Net v2 raw dataset of geodesic pseudo-labels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import run_cli
from dataset_conversion import case_conversion
from dataset_conversion.paseg_convert import convert_dataset, main
from dataset_conversion.errors import DatasetInputError
from dataset_conversion.label_settings import SettingError
from point_tools.io_csv import write_csv
from point_tools.io_slicer import write_slicer_markups
from point_tools.io_volume import write_annotation_volume
from point_tools.simulate import simulate_clicks
from synthetic import ellipsoid_case

SHAPE = (20, 26, 22)
OBLIQUE = (0.8, -0.6, 0, 0.6, 0.8, 0, 0, 0, 1)  # a rotation about z: world != index axes


def make_case(seed: int, *, spacing=(0.8, 0.8, 2.0), direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), ct: bool = False,
              two_classes: bool = False) -> tuple[sitk.Image, np.ndarray]:
    """(image, mask) of a bright ellipsoid (class 1) and, with ``two_classes``, a darker one (class 2)."""
    shape = (20, 34, 22) if two_classes else SHAPE
    centre = (9.5, 9.0, 10.5) if two_classes else None
    image, mask = ellipsoid_case(shape=shape, centre=centre, radii=(5, 6, 5), seed=seed, spacing=spacing,
                                 direction=direction)
    arr, seg = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(mask).astype(np.uint8)
    if two_classes:
        other = ellipsoid_case(shape=shape, centre=(9.5, 25.0, 10.5), radii=(5, 5, 5), fg_value=140, seed=seed + 50)
        second = sitk.GetArrayFromImage(other[1]).astype(bool)
        arr[second] = sitk.GetArrayFromImage(other[0])[second]
        seg[second] = 2
    if ct:  # Hounsfield-like: air -1024 at the image minimum, body and lesion below zero
        arr = arr - 1024
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    return out, seg


def write_inputs(root: Path, n: int = 2, *, ending: str = ".nii.gz", fmt: str = "volume", channels: int = 1,
                 gt: bool = True, start: int = 0, **case_kwargs) -> dict[str, Path]:
    """Images CASE_000c<ending>, clicks in ``fmt`` (volume | slicer | csv) and full masks under ``root``."""
    dirs = {k: root / k for k in ("images", "clicks", "gt")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    csv_rows = {}
    for i in range(start, start + n):
        case = f"case{i}"
        image, seg = make_case(i, **case_kwargs)
        for c in range(channels):
            channel = image if c == 0 else sitk.Cast(300.0 - sitk.Cast(image, sitk.sitkFloat32), sitk.sitkFloat32)
            sitk.WriteImage(channel, str(dirs["images"] / f"{case}_{c:04d}{ending}"))
        objects = simulate_clicks(seg, image.GetSpacing()[::-1])
        if fmt == "volume":
            write_annotation_volume(objects, image, dirs["clicks"] / f"{case}{ending}")
        elif fmt == "slicer":
            write_slicer_markups(objects, image, dirs["clicks"] / f"{case}.mrk.json", coordinate_system="RAS")
        else:
            csv_rows[case] = (objects, image)
        if gt:
            mask = sitk.GetImageFromArray(seg)
            mask.CopyInformation(image)
            sitk.WriteImage(mask, str(dirs["gt"] / f"{case}{ending}"))
    if fmt == "csv":
        dirs["clicks"] = root / "clicks.csv"
        write_csv(csv_rows, dirs["clicks"])
    return dirs


def read(path: Path) -> tuple[sitk.Image, np.ndarray]:
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing())
            and np.allclose(a.GetOrigin(), b.GetOrigin()) and np.allclose(a.GetDirection(), b.GetDirection()))


@pytest.mark.parametrize("ending, fmt, direction", [
    (".nii.gz", "volume", None), (".nrrd", "volume", None), (".mha", "volume", None),
    (".nii.gz", "slicer", OBLIQUE), (".nrrd", "csv", OBLIQUE), (".mha", "slicer", None)])
def test_formats(nnunet_env, tmp_path, ending, fmt, direction):
    kwargs = {"direction": direction} if direction else {}
    dirs = write_inputs(tmp_path / "in", ending=ending, fmt=fmt, **kwargs)
    out = convert_dataset(dirs["images"], dirs["clicks"], 7, "Fmt", gt_dir=dirs["gt"])
    assert out == nnunet_env["nnUNet_raw"] / "Dataset007_Fmt"
    assert [p.name for p in nnunet_env["nnUNet_raw"].iterdir()] == ["Dataset007_Fmt"]  # no temporary left
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "foreground": 1, "ignore": 2}
    assert (meta["numTraining"], meta["file_ending"], meta["channel_names"]) == (2, ending, {"0": "image"})
    for case in ("case0", "case1"):
        source = dirs["images"] / f"{case}_0000{ending}"
        assert (out / "imagesTr" / source.name).read_bytes() == source.read_bytes()  # copied unchanged
        label, pseudo = read(out / "labelsTr" / f"{case}{ending}")
        image, _ = read(source)
        _, truth = read(dirs["gt"] / f"{case}{ending}")
        assert label.GetPixelID() == sitk.sitkUInt8 and same_geometry(label, image)
        assert set(np.unique(pseudo)) == {0, 1, 2}
        assert np.all(truth[pseudo == 1] == 1) and np.all(truth[pseudo == 0] == 0)  # clean synthetic: no errors
        assert (pseudo == 1).sum() > 0.2 * truth.sum()
    report = json.loads((out / "pseudo_label_quality.json").read_text())
    assert set(report["cases"]) == {"case0", "case1"}
    assert report["summary"]["fg_precision"]["mean"] == 1.0 and report["summary"]["fg_precision"]["n"] == 2


@pytest.mark.parametrize("method, dataset_id", [("refined", 31), ("extremes", 34)])
def test_intensity_methods(nnunet_env, tmp_path, capsys, method, dataset_id):
    """--method refined or extremes through the CLI, with 2 channels and 2 workers: a valid dataset that records its
    method, and at least the geodesic method's foreground (the same core, grown) at full precision on clean shapes."""
    dirs = write_inputs(tmp_path / "in", channels=2, n=3)
    main(["-i", str(dirs["images"]), "-a", str(dirs["clicks"]), "-d", str(dataset_id), "-n", method.capitalize(),
          "--gt", str(dirs["gt"]), "--method", method, "-np", "2", "--device", "cpu"])
    geodesic = convert_dataset(dirs["images"], dirs["clicks"], 32, "Geodesic", gt_dir=dirs["gt"], method="geodesic")
    out = nnunet_env["nnUNet_raw"] / f"Dataset{dataset_id:03d}_{method.capitalize()}"
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["pseudo_labels"]["method"].startswith(method)
    assert json.loads((geodesic / "dataset.json").read_text())["pseudo_labels"]["method"].startswith("geodesic")
    for case in ("case0", "case1", "case2"):
        _, pseudo = read(out / "labelsTr" / f"{case}.nii.gz")
        _, old = read(geodesic / "labelsTr" / f"{case}.nii.gz")
        _, truth = read(dirs["gt"] / f"{case}.nii.gz")
        assert set(np.unique(pseudo)) == {0, 1, 2}
        assert np.all(truth[pseudo == 1] == 1) and np.all(truth[pseudo == 0] == 0)
        assert (pseudo == 1).sum() >= (old == 1).sum()
    report = json.loads((out / "pseudo_label_quality.json").read_text())["summary"]
    assert report["fg_precision"]["min"] == 1.0


def test_unknown_method_is_refused(nnunet_env, tmp_path, capsys):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    with pytest.raises(SystemExit) as exit_:
        main(["-i", str(dirs["images"]), "-a", str(dirs["clicks"]), "-d", "33", "-n", "X", "--method", "grabcut"])
    assert exit_.value.code == 2 and ("error: argument --method: unknown pseudo-label method 'grabcut'; choose one "
                                      "of geodesic, refined") in capsys.readouterr().err
    with pytest.raises(SettingError, match="unknown pseudo-label method 'grabcut'.*\n.*threshold must be"):
        convert_dataset(dirs["images"], dirs["clicks"], 33, "X", method="grabcut", threshold=2.0)
    # refined grows the core only up to a share of 0.6: a higher threshold is refused once, before any case
    with pytest.raises(SettingError, match=r"threshold: with --method refined, at most 0.6 .*got 0.65"):
        convert_dataset(dirs["images"], dirs["clicks"], 33, "X", method="refined", threshold=0.65)
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_ct_negative_intensities(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", ct=True)
    out = convert_dataset(dirs["images"], dirs["clicks"], 8, "CT", gt_dir=dirs["gt"], channel_names=["CT"])
    _, image = read(dirs["images"] / "case0_0000.nii.gz")
    _, pseudo = read(out / "labelsTr" / "case0.nii.gz")
    assert image.min() == -1024 and np.all(pseudo[image == -1024] == 0)  # minimum-intensity rule
    report = json.loads((out / "pseudo_label_quality.json").read_text())["summary"]
    assert report["fg_precision"]["min"] == 1.0 and report["fg_recall"]["min"] > 0.2
    assert json.loads((out / "dataset.json").read_text())["channel_names"] == {"0": "CT"}


def test_multichannel_multiclass(nnunet_env, tmp_path, capsys):
    dirs = write_inputs(tmp_path / "in", channels=2, two_classes=True)
    out = convert_dataset(dirs["images"], dirs["clicks"], 9, "Multi", gt_dir=dirs["gt"], classes=["bright", "dim"],
                          channel_names=["T1", "T2"])
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["labels"] == {"background": 0, "bright": 1, "dim": 2, "ignore": 3}
    assert meta["channel_names"] == {"0": "T1", "1": "T2"}
    assert sorted(p.name for p in (out / "imagesTr").iterdir()) == [f"case{i}_000{c}.nii.gz" for i in (0, 1)
                                                                     for c in (0, 1)]
    _, pseudo = read(out / "labelsTr" / "case0.nii.gz")
    _, truth = read(dirs["gt"] / "case0.nii.gz")
    for cls in (1, 2):
        assert (pseudo == cls).any() and np.all(truth[pseudo == cls] == cls)
    report = json.loads((out / "pseudo_label_quality.json").read_text())
    assert report["cases"]["case0"]["per_class"]["2"]["precision"] == 1.0
    printed = capsys.readouterr().out
    assert "case0" in printed and "mean" in printed and "c2_prec" in printed


def test_object_classes_mapping(nnunet_env, tmp_path):
    """A volume without a class sidecar takes its classes from the object -> class mapping."""
    dirs = write_inputs(tmp_path / "in", n=1, two_classes=True)
    for sidecar in dirs["clicks"].glob("*.classes.json"):
        sidecar.unlink()
    out = convert_dataset(dirs["images"], dirs["clicks"], 10, "Map", classes=["a", "b"], object_classes={1: 2, 2: 1})
    _, pseudo = read(out / "labelsTr" / "case0.nii.gz")
    _, truth = read(dirs["gt"] / "case0.nii.gz")
    assert (pseudo == 2).any() and np.all(truth[pseudo == 2] == 1)  # object 1 (the class-1 ellipsoid) -> class 2


def test_test_images_and_labels(nnunet_env, tmp_path):
    train = write_inputs(tmp_path / "train", ending=".nrrd")
    test = write_inputs(tmp_path / "test", n=1, start=5, ending=".nrrd")
    label_file = test["gt"] / "case5.nrrd"  # test labels in another format than the images
    sitk.WriteImage(sitk.ReadImage(str(label_file)), str(test["gt"] / "case5.mha"))
    label_file.unlink()
    out = convert_dataset(train["images"], train["clicks"], 11, "Ts", images_ts_dir=test["images"],
                          labels_ts_dir=test["gt"])
    assert [p.name for p in (out / "imagesTs").iterdir()] == ["case5_0000.nrrd"]
    # labelsTs takes the dataset's ending, so nnUNetv2_evaluate_folder can pair it with predictions
    label, arr = read(out / "labelsTs" / "case5.nrrd")
    image, _ = read(test["images"] / "case5_0000.nrrd")
    assert same_geometry(label, image) and np.array_equal(arr, read(test["gt"] / "case5.mha")[1])
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 2


def test_no_silent_overwrite(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", gt=False)
    raw = nnunet_env["nnUNet_raw"]
    convert_dataset(dirs["images"], dirs["clicks"], 12, "First")
    with pytest.raises(DatasetInputError, match="Dataset012_First"):
        convert_dataset(dirs["images"], dirs["clicks"], 12, "Second")
    assert [p.name for p in raw.iterdir()] == ["Dataset012_First"]
    convert_dataset(dirs["images"], dirs["clicks"], 12, "Second", overwrite=True)
    assert [p.name for p in raw.iterdir()] == ["Dataset012_Second"]


def test_failure_midway_writes_nothing(nnunet_env, tmp_path, monkeypatch):
    dirs = write_inputs(tmp_path / "in", n=3, gt=False)
    real = case_conversion.pseudo_label

    def fail_on_third(image, spacing, objects, **kwargs):
        if kwargs["source"] == "case case2":
            raise RuntimeError("disk full")
        return real(image, spacing, objects, **kwargs)

    monkeypatch.setattr(case_conversion, "pseudo_label", fail_on_third)
    with pytest.raises(RuntimeError, match="case2.*disk full"):
        convert_dataset(dirs["images"], dirs["clicks"], 13, "Fail")
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


# ------------------------------------------------------------------------------------------- bad input


def _set_voxels(path: Path, values: dict[tuple, float] | None = None, *, array=None, **geometry) -> None:
    """Rewrite the image at ``path`` with some voxels changed, a new array and/or new geometry."""
    image, arr = read(path)
    arr = array if array is not None else arr
    for idx, value in (values or {}).items():
        arr[idx] = value
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(image)
    for key, value in geometry.items():
        getattr(out, f"Set{key}")(value)
    sitk.WriteImage(out, str(path))


def _clicks_array(path: Path) -> np.ndarray:
    return read(path)[1]


def break_annotation_grid(d):
    _set_voxels(d["clicks"] / "case1.nii.gz", Spacing=(1.0, 1.0, 1.0))
    return "case1", "case1.nii.gz"


def break_annotation_origin(d):
    _set_voxels(d["clicks"] / "case1.nii.gz", Origin=(0.0, 3.0, 0.0))
    return "case1", "case1.nii.gz"


def drop_foreground(d):
    arr = _clicks_array(d["clicks"] / "case1.nii.gz")
    _set_voxels(d["clicks"] / "case1.nii.gz", array=np.where(arr == 2, 0, arr))
    return "case1", "case1.nii.gz"


def drop_background(d):
    arr = _clicks_array(d["clicks"] / "case0.nii.gz")
    _set_voxels(d["clicks"] / "case0.nii.gz", array=np.where(arr == 1, 0, arr))
    return "case0", "case0.nii.gz"


def foreground_outside_box(d):
    arr = _clicks_array(d["clicks"] / "case1.nii.gz")
    arr[arr == 2] = 0
    arr[1, 1, 1] = 2  # a corner of the image: outside the background clicks' box
    _set_voxels(d["clicks"] / "case1.nii.gz", array=arr)
    return "case1", "case1.nii.gz"


def non_click_values(d):
    arr = _clicks_array(d["clicks"] / "case0.nii.gz").astype(np.float32)
    arr[3, 3, 3] = 1.5
    _set_voxels(d["clicks"] / "case0.nii.gz", array=arr)
    return "case0", "case0.nii.gz"


def mask_given_as_clicks(d):
    sitk.WriteImage(sitk.ReadImage(str(d["gt"] / "case1.nii.gz")), str(d["clicks"] / "case1.nii.gz"))
    return "case1", "case1.nii.gz"


def unreadable_image(d):
    (d["images"] / "case0_0000.nii.gz").write_bytes(b"not an image")
    return "case0", "case0_0000.nii.gz"


def unreadable_clicks(d):
    (d["clicks"] / "case1.nii.gz").write_bytes(b"\x1f\x8b garbage")
    return "case1", "case1.nii.gz"


def nan_intensities(d):
    path = d["images"] / "case1_0000.nii.gz"
    _set_voxels(path, array=read(path)[1].astype(np.float32), values={(10, 10, 10): np.nan})
    return "case1", "case1_0000.nii.gz"


def duplicate_annotation(d):
    write_slicer_markups(simulate_clicks(read(d["gt"] / "case0.nii.gz")[1], (2.0, 0.8, 0.8)),
                         sitk.ReadImage(str(d["images"] / "case0_0000.nii.gz")), d["clicks"] / "case0.mrk.json")
    return "case0", "case0.mrk.json"


def annotation_without_images(d):
    (d["clicks"] / "case1.nii.gz").rename(d["clicks"] / "case9.nii.gz")
    return "case9", "case9.nii.gz"


def images_without_annotation(d):
    (d["clicks"] / "case1.nii.gz").unlink()
    return "case1", "no click annotation"


def missing_channel(d):
    for case in ("case0", "case1"):
        image = sitk.ReadImage(str(d["images"] / f"{case}_0000.nii.gz"))
        sitk.WriteImage(image, str(d["images"] / f"{case}_0001.nii.gz"))
    (d["images"] / "case1_0001.nii.gz").unlink()
    return "case1", "case1_0001.nii.gz"


def channel_grid_differs(d):
    image = sitk.ReadImage(str(d["images"] / "case0_0000.nii.gz"))
    for case in ("case0", "case1"):
        sitk.WriteImage(image, str(d["images"] / f"{case}_0001.nii.gz"))
    _set_voxels(d["images"] / "case1_0001.nii.gz", Origin=(5.0, 0.0, 0.0))
    return "case1", "case1_0001.nii.gz"


def mixed_endings(d):
    path = d["images"] / "case1_0000.nii.gz"
    sitk.WriteImage(sitk.ReadImage(str(path)), str(d["images"] / "case1_0000.nrrd"))
    path.unlink()
    return "case1_0000.nrrd", ".nrrd"


def class_beyond_classes(d):
    (d["clicks"] / "case0.classes.json").write_text(json.dumps({"object_classes": {"1": 2}}))
    return "case0", "class 2"


def gt_grid_differs(d):
    _set_voxels(d["gt"] / "case0.nii.gz", Spacing=(2.0, 2.0, 2.0))
    return "case0", "case0.nii.gz"


def gt_not_classes(d):
    _set_voxels(d["gt"] / "case1.nii.gz", values={(0, 0, 0): 3})
    return "case1", "case1.nii.gz"


def click_outside_image(d):
    image = sitk.ReadImage(str(d["images"] / "case0_0000.nii.gz"))
    objects = simulate_clicks(read(d["gt"] / "case0.nii.gz")[1], (2.0, 0.8, 0.8))
    path = d["clicks"] / "case0.mrk.json"
    write_slicer_markups(objects, image, path)
    doc = json.loads(path.read_text())
    doc["markups"][0]["controlPoints"][3]["position"][2] += 500.0  # a background click far above the image
    path.write_text(json.dumps(doc))
    (d["clicks"] / "case0.nii.gz").unlink()
    return "case0", "case0.mrk.json"


BAD_INPUTS = [break_annotation_grid, break_annotation_origin, drop_foreground, drop_background,
              foreground_outside_box, non_click_values, mask_given_as_clicks, unreadable_image, unreadable_clicks,
              nan_intensities, duplicate_annotation, annotation_without_images, images_without_annotation,
              missing_channel, channel_grid_differs, mixed_endings, class_beyond_classes, gt_grid_differs,
              gt_not_classes, click_outside_image]


@pytest.mark.parametrize("breaker", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_input(nnunet_env, tmp_path, breaker):
    dirs = write_inputs(tmp_path / "in")
    case, file = breaker(dirs)
    with pytest.raises(DatasetInputError) as error:
        convert_dataset(dirs["images"], dirs["clicks"], 20, "Bad", gt_dir=dirs["gt"])
    message = str(error.value)
    assert case in message and file in message, message
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_duplicate_train_and_test_case(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in")
    test = write_inputs(tmp_path / "test", n=1, start=1)
    with pytest.raises(DatasetInputError, match="case1: duplicate case id"):
        convert_dataset(dirs["images"], dirs["clicks"], 21, "Dup", images_ts_dir=test["images"])
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_all_problems_reported_at_once(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=3)
    drop_foreground(dirs)
    nan_intensities(dirs)
    unreadable_image(dirs)
    with pytest.raises(DatasetInputError, match=r"^2 problem\(s\)") as error:
        convert_dataset(dirs["images"], dirs["clicks"], 22, "All")
    assert "case0_0000.nii.gz" in str(error.value) and "case1" in str(error.value)


def test_csv_case_without_images(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", fmt="csv", gt=False)
    (dirs["images"] / "case1_0000.nii.gz").unlink()
    with pytest.raises(DatasetInputError, match=r"clicks\.csv: clicks for case case1, which has no images"):
        convert_dataset(dirs["images"], dirs["clicks"], 25, "Csv")
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_cli_rejects_malformed_object_classes(nnunet_env, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["-i", str(tmp_path), "-a", str(tmp_path), "-d", "26", "-n", "X", "--object_classes", "1=2"])
    assert exit_.value.code == 2 and "OBJECT:CLASS" in capsys.readouterr().err


def test_cli_error_names_case_and_file(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", gt=False)
    drop_background(dirs)
    proc = run_cli("paseg_convert", "-i", dirs["images"], "-a", dirs["clicks"], "-d", "23", "-n", "Cli", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "case0" in proc.stderr and "case0.nii.gz" in proc.stderr
    assert list(nnunet_env["nnUNet_raw"].iterdir()) == []


def test_end_to_end_nnunet_accepts_dataset(nnunet_env, tmp_path):
    """paseg_convert (2 workers, CSV clicks, test images) -> nnU-Net's integrity check, planning, preprocessing."""
    dirs = write_inputs(tmp_path / "in", n=2, fmt="csv", ending=".nrrd", spacing=(0.9, 0.9, 2.5))
    test = write_inputs(tmp_path / "test", n=1, start=7, ending=".nrrd", spacing=(0.9, 0.9, 2.5))
    proc = run_cli("paseg_convert", "-i", dirs["images"], "-a", dirs["clicks"], "-d", "24", "-n", "E2E",
                   "--gt", dirs["gt"], "--images_ts", test["images"], "--labels_ts", test["gt"], "-np", "2",
                   "--device", "cpu")
    assert "fg_precision" in proc.stdout and "Wrote" in proc.stdout
    # nnUNet_n_proc_DA=0 (the fixture's, for training) makes the planner call torch.set_num_threads(0)
    run_cli("nnUNetv2_plan_and_preprocess", "-d", "24", "-c", "3d_fullres", "--verify_dataset_integrity", "-np", "1",
            env={"nnUNet_n_proc_DA": "1"})
    preprocessed = nnunet_env["nnUNet_preprocessed"] / "Dataset024_E2E"
    plans = json.loads((preprocessed / "nnUNetPlans.json").read_text())
    assert "3d_fullres" in plans["configurations"]
    assert len(list((preprocessed / "nnUNetPlans_3d_fullres").glob("case*"))) >= 2
