"""What the demo (scripts/demo.py) and the accuracy benchmark (benchmarks/accuracy.py) share: the nnU-Net
environment of a run, console-script calls, and the steps from an atlas cohort to a trained model's predictions
(``paseg_convert``, planning and preprocessing, the small CPU configuration, ``NAME_budget`` training, prediction).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from point_tools.pseudo_labels import DEFAULT_METHOD

REPO = Path(__file__).resolve().parents[1]
# The lab's trainers (screening variants, NAME_budget), found by nnU-Net through nnUNet_extTrainer.
LAB_TRAINERS = REPO / "benchmarks" / "trainers"
BIN = Path(sys.executable).parent
# Width of the widest stage of the CPU configuration 3d_small (paseg_add_small_plans) of the demo and the benchmark:
# 1/4 of nnU-Net's 3d_fullres widths on the atlas cohort ([8, 16, 32, 64]). At 32 ([4, 8, 16, 32]) the partial loss
# took up to 8-24 epochs of the 24 x 50 budget to first predict the foreground; at 64, 0-3 in most runs
# (docs/experiments.md), for about 1.4x the time per iteration.
SMALL_MAX_FEATURES = 64
# nnU-Net's planners (nnUNetv2_plan_and_preprocess -pl) and the plans each writes (-p of the later commands).
PLANS_OF_PLANNER = {"ExperimentPlanner": "nnUNetPlans", "nnUNetPlannerResEncM": "nnUNetResEncUNetMPlans",
                    "nnUNetPlannerResEncL": "nnUNetResEncUNetLPlans",
                    "nnUNetPlannerResEncXL": "nnUNetResEncUNetXLPlans"}
DEFAULT_PLANS = "nnUNetPlans"
_print_lock = threading.Lock()


class RunFailed(RuntimeError):
    """A console script exited with an error; the message says which and where its log is."""


def log(prefix: str, text: str) -> None:
    with _print_lock:
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {text}", flush=True)


def nnunet_environment(root: Path, epochs: int, iterations: int, jobs: int = 1, own_folders: bool = True) -> dict:
    """Environment for nnU-Net's commands: the three nnU-Net folders under ``root`` (with ``own_folders`` always,
    else only where the caller has not set them), this working tree's code first on the path, the lab's trainers in
    ``nnUNet_extTrainer``, the budget trainers' schedule (``PASEG_BUDGET_EPOCHS`` / ``PASEG_BUDGET_ITERATIONS``) and a split of the CPU cores between ``jobs``
    trainings at a time: each gets ``nnUNet_n_proc_DA`` augmentation workers and ``PASEG_TORCH_THREADS`` torch threads
    (unless set)."""
    env = dict(os.environ)
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        if own_folders or key not in env:
            env[key] = str(root / key)
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    # The working tree's code, not an older installed copy (as in the tests), and the lab's trainers.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["nnUNet_extTrainer"] = os.pathsep.join(filter(None, [str(LAB_TRAINERS), env.get("nnUNet_extTrainer")]))
    cores_per_job = max(1, (os.cpu_count() or 2) // jobs)
    # nnU-Net's default data-augmentation worker count is sized for GPU servers.
    env.setdefault("nnUNet_n_proc_DA", str(max(1, min(8, cores_per_job // 2))))
    env.setdefault("PASEG_TORCH_THREADS", str(max(1, cores_per_job - int(env["nnUNet_n_proc_DA"]))))
    env["PASEG_BUDGET_EPOCHS"], env["PASEG_BUDGET_ITERATIONS"] = str(epochs), str(iterations)
    return env


def print_table(lines: list[str], out: Path | None, title: str) -> None:
    """A measurement's markdown lines to the terminal and, with ``out``, to that file under ``# title``."""
    print("\n".join(lines))
    if out:
        out.write_text(f"# {title}\n\n" + "\n".join(lines) + "\n")


def run(env: dict, name: str, *args, log_file: Path | None = None, prefix: str = "run") -> None:
    """Run a console script of this environment; its output goes to ``log_file`` (appended) or the terminal.

    Raises:
        RunFailed: the script exited with an error.
    """
    args = [str(a) for a in args]
    log(prefix, "$ " + " ".join([name, *args]) + (f"   (log: {log_file})" if log_file else ""))
    if log_file is None:
        code = subprocess.run([str(BIN / name), *args], env=env).returncode
    else:
        with open(log_file, "a") as out:
            code = subprocess.run([str(BIN / name), *args], env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise RunFailed(f"{name} failed (command above{f', log {log_file}' if log_file else ''}); fix the cause and "
                        "rerun: finished steps are skipped")


def preprocessed_complete(folder: Path, num_training: int, plans: str = DEFAULT_PLANS) -> bool:
    """Whether ``plans`` and their 3d_fullres data of every training case are in the preprocessed ``folder``."""
    data = folder / f"{plans}_3d_fullres"
    return (folder / f"{plans}.json").is_file() and data.is_dir() and len(list(data.glob("*.pkl"))) == num_training


def convert_clicks(env: dict, cohort: Path, dataset_id: int, name: str, classes: list[str], num_processes: int,
                   preview: bool = False, method: str = DEFAULT_METHOD, prefix: str = "run") -> Path:
    """The cohort's training images and clicks as an nnU-Net dataset with pseudo-labels (``paseg_convert --method
    method``; their quality against the cohort's full labels; with ``preview`` their pictures) and its test images
    and full labels in imagesTs / labelsTs."""
    raw = Path(env["nnUNet_raw"]) / f"Dataset{dataset_id:03d}_{name}"
    if not (raw / "dataset.json").is_file():
        run(env, "paseg_convert", "-i", cohort / "train/images", "-a", cohort / "train/clicks", "--gt",
            cohort / "train/labels", "--images_ts", cohort / "test/images", "--labels_ts", cohort / "test/labels",
            "-d", dataset_id, "-n", name, "--classes", *classes, "--channel_names", "T1", "-np", num_processes,
            "--method", method, *(["--preview"] if preview else []), prefix=prefix)
    return raw


def plan_and_preprocess(env: dict, dataset_id: int, raw: Path, num_processes: int, configuration: str,
                        max_features: int, prefix: str = "run", planner: str = "ExperimentPlanner") -> None:
    """nnU-Net's planning (``planner``, e.g. nnUNetPlannerResEncM) and 3d_fullres preprocessing (skipped when
    complete) and, for ``3d_small``, the small CPU configuration with ``max_features`` at the widest stage
    (``paseg_add_small_plans``) in the planner's plans."""
    plans = PLANS_OF_PLANNER[planner]
    num_training = len(list((raw / "labelsTr").glob("*")))
    if not preprocessed_complete(Path(env["nnUNet_preprocessed"]) / raw.name, num_training, plans):
        run(env, "nnUNetv2_plan_and_preprocess", "-d", dataset_id, "-pl", planner, "-c", "3d_fullres", "-np",
            min(2, num_processes), "--verify_dataset_integrity", prefix=prefix)
    if configuration == "3d_small":
        run(env, "paseg_add_small_plans", "-d", dataset_id, "-p", plans, "--max_features", max_features,
            prefix=prefix)


def fold_dir(env: dict, dataset: str, trainer: str, configuration: str, plans: str = DEFAULT_PLANS) -> Path:
    """nnU-Net's output folder of a fold-``all`` training."""
    return Path(env["nnUNet_results"]) / dataset / f"{trainer}__{plans}__{configuration}" / "fold_all"


def train(env: dict, dataset: str, trainer: str, configuration: str, device: str, log_file: Path | None = None,
          prefix: str = "run", plans: str = DEFAULT_PLANS) -> bool:
    """Train ``trainer`` on all cases of ``dataset`` (fold ``all``), continuing an interrupted run (``--c``); nothing
    when it has finished. Returns whether it continued an interrupted run."""
    folder = fold_dir(env, dataset, trainer, configuration, plans)
    if (folder / "checkpoint_final.pth").is_file():
        log(prefix, f"{trainer} on {dataset}: already trained")
        return False
    resume = (folder / "checkpoint_latest.pth").is_file()
    run(env, "nnUNetv2_train", dataset, configuration, "all", "-tr", trainer, "-p", plans, "-device", device,
        *(["--c"] if resume else []), log_file=log_file, prefix=prefix)
    return resume


def predict(env: dict, images: Path, output: Path, dataset: str, trainer: str, configuration: str, device: str,
            log_file: Path | None = None, prefix: str = "run", plans: str = DEFAULT_PLANS) -> None:
    """Predict every ``*_0000`` image of ``images`` into ``output`` with the fold-``all`` model (resumable)."""
    expected = {p.name.replace("_0000.nii.gz", ".nii.gz") for p in images.glob("*_0000.nii.gz")}
    if output.is_dir() and expected <= {p.name for p in output.glob("*.nii.gz")}:
        return
    run(env, "nnUNetv2_predict", "-i", images, "-o", output, "-d", dataset, "-c", configuration, "-f", "all",
        "-tr", trainer, "-p", plans, "-device", device, "-npp", 1, "-nps", 1, "--continue_prediction",
        log_file=log_file, prefix=prefix)
