"""nnU-Net finds the project's trainers by class name, and users' nnUNet_extTrainer folders keep working."""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name

import nnunetv2_paseg
from nnunetv2_paseg import trainers
from tests.conftest import REPO_ROOT, TEST_TRAINERS_DIR, run_cli


def _defined_trainers() -> dict[str, type]:
    """Every public nnUNetTrainer subclass defined in a module of nnunetv2_paseg.trainers."""
    found = {}
    for info in pkgutil.walk_packages(trainers.__path__, f"{trainers.__name__}."):
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, nnUNetTrainer) and obj.__module__ == module.__name__ and not name.startswith("_"):
                found[name] = obj
    return found


def test_the_package_holds_the_method_and_exports_every_trainer():
    defined = _defined_trainers()
    assert {"nnUNetTrainerPASeg", "nnUNetTrainerPASegAux", "nnUNetTrainerSCM"} <= set(defined)
    assert len(defined) <= 15, sorted(defined)
    assert not [name for name in defined if name.endswith("_budget")]
    assert sorted(trainers.__all__) == sorted(defined)
    for name, cls in defined.items():
        assert getattr(nnunetv2_paseg, name) is cls


def test_nnunet_lookup_finds_every_trainer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    for name, cls in _defined_trainers().items():
        assert recursive_find_trainer_class_by_name(name) is cls


def test_the_lab_trainers_are_found_through_nnunet_ext_trainer(monkeypatch: pytest.MonkeyPatch):
    from benchmarks.harness import LAB_TRAINERS

    monkeypatch.delenv("nnUNet_extTrainer", raising=False)
    with pytest.raises(RuntimeError, match="Could not find requested nnunet trainer"):
        recursive_find_trainer_class_by_name("nnUNetTrainerPASeg_budget")
    monkeypatch.setenv("nnUNet_extTrainer", str(LAB_TRAINERS))
    for name in ("nnUNetTrainerPASeg_budget", "nnUNetTrainerSCM_budget", "nnUNetTrainerPASeg_voxelCRF",
                 "nnUNetTrainerPASeg_mmCRF_budget", "nnUNetTrainer_budget"):
        assert issubclass(recursive_find_trainer_class_by_name(name), nnUNetTrainer), name


def test_fresh_interpreter_finds_the_trainer_through_nnunet_alone():
    # As nnUNetv2_train / nnUNetv2_predict do it: nothing of the project imported beforehand.
    env = {k: v for k, v in os.environ.items() if k != "nnUNet_extTrainer"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    code = ("from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name as find; "
            "print(find('nnUNetTrainerPASeg').__module__)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "nnunetv2_paseg.trainers.paseg"


def test_nnunetv2_train_resolves_the_trainer_name(nnunet_env: dict[str, Path]):
    # No dataset 1 exists: the run fails after the trainer lookup, on the dataset, for our trainer only.
    ours = run_cli("nnUNetv2_train", "1", "3d_fullres", "0", "-tr", "nnUNetTrainerPASeg", "-device", "cpu",
                   check=False)
    unknown = run_cli("nnUNetv2_train", "1", "3d_fullres", "0", "-tr", "nnUNetTrainerPASeg_doesNotExist",
                      "-device", "cpu", check=False)
    assert ours.returncode != 0 and unknown.returncode != 0
    assert "Could not find requested nnunet trainer" in unknown.stderr
    assert "Could not find requested nnunet trainer" not in ours.stderr
    assert "Could not find a dataset with the ID 1" in ours.stderr


def test_users_ext_trainer_folders_keep_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    user_dir = tmp_path / "my_trainers"
    user_dir.mkdir()
    (user_dir / "my_trainers_module.py").write_text(
        "from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer\n\n\n"
        "class nnUNetTrainerUserOwn(nnUNetTrainer):\n    pass\n")
    monkeypatch.setenv("nnUNet_extTrainer", os.pathsep.join([str(user_dir), str(TEST_TRAINERS_DIR)]))
    assert recursive_find_trainer_class_by_name("nnUNetTrainerUserOwn").__name__ == "nnUNetTrainerUserOwn"
    test_trainer = recursive_find_trainer_class_by_name("nnUNetTrainerPASeg_test")
    assert issubclass(test_trainer, nnunetv2_paseg.nnUNetTrainerPASeg)
    assert recursive_find_trainer_class_by_name("nnUNetTrainerPASeg") is nnunetv2_paseg.nnUNetTrainerPASeg
