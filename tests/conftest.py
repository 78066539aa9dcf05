"""Shared fixtures: nnU-Net folders in a temporary directory and a runner for console scripts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
# Test-only short trainer subclasses; nnU-Net finds them through nnUNet_extTrainer.
TEST_TRAINERS_DIR = TESTS_DIR / "trainers"
BIN_DIR = Path(sys.executable).parent


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
def nnunet_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """nnUNet_raw / nnUNet_preprocessed / nnUNet_results in tmp_path, exported for this test and its subprocesses."""
    dirs = {key: tmp_path / key for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")}
    for key, path in dirs.items():
        path.mkdir()
        monkeypatch.setenv(key, str(path))
    monkeypatch.setenv("nnUNet_extTrainer", str(TEST_TRAINERS_DIR))
    # Subprocesses (nnUNetv2_train, paseg_convert, ...) import this working tree, not an older installed copy.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("nnUNet_n_proc_DA", "0")
    monkeypatch.setenv("nnUNet_compile", "f")
    # nnU-Net's final validation otherwise starts 8 export workers, 10x slower on 2 cores.
    monkeypatch.setenv("nnUNet_def_n_proc", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return dirs
