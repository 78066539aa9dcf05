"""Shared fixtures: nnU-Net folders in a temporary directory, a runner for console scripts, and one converted,
planned and preprocessed 7-click dataset for the trainer tests (built once per session)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from point_tools.io_volume import write_annotation_volume
from point_tools.simulate import simulate_clicks
from synthetic import ellipsoid_case

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
# Test-only short trainer subclasses; nnU-Net finds them through nnUNet_extTrainer.
TEST_TRAINERS_DIR = TESTS_DIR / "trainers"
BIN_DIR = Path(sys.executable).parent
# The converted, planned and preprocessed 7-click dataset of the ``preprocessed`` fixture.
PIPELINE_DATASET_ID = 987
PIPELINE_DATASET = f"Dataset{PIPELINE_DATASET_ID}_PASegE2E"


def run_cli(name: str, *args: str | os.PathLike, env: dict | None = None, timeout: float = 900,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run a console script installed beside this interpreter; on failure show its whole output."""
    exe = BIN_DIR / name
    if not exe.exists():
        raise FileNotFoundError(f"{exe} not found: is the project installed in this environment (scripts/setup.sh)?")
    proc = subprocess.run([str(exe), *map(str, args)], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture
def this_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Subprocesses (nnUNetv2_train, paseg_convert, ...) import this working tree, not an older installed copy."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))


@pytest.fixture
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, this_tree: None) -> dict[str, Path]:
    """nnUNet_raw / nnUNet_preprocessed / nnUNet_results in tmp_path, exported for this test and its subprocesses."""
    dirs = {key: tmp_path / key for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for key, path in dirs.items():
        path.mkdir()
        monkeypatch.setenv(key, str(path))
    monkeypatch.setenv("nnUNet_extTrainer", str(TEST_TRAINERS_DIR))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_compile", "f")
    # nnU-Net's final validation otherwise starts 8 export workers, 10x slower on 2 cores.
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return dirs


def _write_cases(root: Path, seeds: range, folder: str, with_clicks: bool) -> None:
    for seed in seeds:
        rng = np.random.default_rng(seed)
        centre = tuple(float(c) for c in np.array([15.5, 19.5, 17.5]) + rng.uniform(-3, 3, 3))
        image, mask = ellipsoid_case(centre=centre, radii=(6, 8, 7), seed=seed, spacing=(0.9, 0.8, 1.1))
        case = f"case{seed:02d}"
        for sub in ("images", "labels", "clicks"):
            (root / folder / sub).mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(image, str(root / folder / "images" / f"{case}_0000.nii.gz"))
        sitk.WriteImage(mask, str(root / folder / "labels" / f"{case}.nii.gz"))
        if with_clicks:
            objects = simulate_clicks(sitk.GetArrayFromImage(mask), image.GetSpacing()[::-1], seed=seed)
            write_annotation_volume(objects, image, root / folder / "clicks" / f"{case}.nii.gz")


@pytest.fixture(scope="session")
def preprocessed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A converted, planned and preprocessed 7-click dataset (5 training, 2 test cases) with a 3d_small config."""
    root = tmp_path_factory.mktemp("paseg_pipeline")
    dirs = {"nnUNet_raw": root / "raw", "nnUNet_preprocessed": root / "preprocessed"}
    for path in dirs.values():
        path.mkdir()
    env = {**{k: str(v) for k, v in dirs.items()}, "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1",
           "nnUNet_def_n_proc": "1"}
    _write_cases(root / "inputs", range(5), "train", with_clicks=True)
    _write_cases(root / "inputs", range(5, 7), "test", with_clicks=False)
    inputs = root / "inputs"
    run_cli("paseg_convert", "-i", inputs / "train" / "images", "-a", inputs / "train" / "clicks",
            "--gt", inputs / "train" / "labels", "--images_ts", inputs / "test" / "images",
            "--labels_ts", inputs / "test" / "labels", "-d", PIPELINE_DATASET_ID, "-n",
            PIPELINE_DATASET.split("_", 1)[1], "--device", "cpu", env=env)
    run_cli("nnUNetv2_plan_and_preprocess", "-d", PIPELINE_DATASET_ID, "-c", "3d_fullres", "-np", "1",
            "--verify_dataset_integrity", env=env)
    run_cli("paseg_add_small_plans", "-d", PIPELINE_DATASET_ID, "-n", "3d_small", "--max_features", "16", env=env)
    return dirs


@pytest.fixture
def pipeline_env(nnunet_env: dict[str, Path], preprocessed: dict[str, Path],
                 monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """``nnunet_env`` (fresh nnUNet_results) on the shared preprocessed dataset."""
    for key, path in preprocessed.items():
        monkeypatch.setenv(key, str(path))
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    return {**nnunet_env, **preprocessed}


def started_trainer(name: str):
    """The trainer ``name`` (found as ``nnUNetv2_train`` finds it) on the pipeline dataset's 3d_small, fold 0, on the
    CPU, through ``on_train_start`` and its first ``on_train_epoch_start`` (torch seeded); needs ``pipeline_env``."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.manual_seed(0)
    trainer = get_trainer_from_args(str(PIPELINE_DATASET_ID), "3d_small", 0, name, device=torch.device("cpu"))
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    return trainer
