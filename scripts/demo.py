"""The demo: from 7 clicks per object to a 3D segmentation model, scored against full labels.

    bash scripts/demo.sh [--output demo_output] [--fresh]     (set-up + this driver)

Steps, each printed as it runs and skipped when its result is already there (``--fresh`` starts over):
1. a cohort of real brain MRI with real labels (``paseg_build_atlas_cohort``: the lateral ventricles, 24 training
   and 12 test cases derived from the MNI152 template and its neuromorphometrics labels) with 7 simulated clicks
   per ventricle on the training cases;
2. ``paseg_convert --preview``: geodesic pseudo-labels with nnU-Net's ignore label, their quality against the full
   labels, and pictures of them (``previews/CASE.png`` and ``previews/overview.png`` in the dataset folder);
3. ``nnUNetv2_plan_and_preprocess``; 4. ``paseg_add_small_plans`` (a CPU-sized network, ``3d_small``);
5. ``nnUNetv2_train ... -tr nnUNetTrainerPASeg_budget`` (stage 1 of PA-Seg on a fixed, short schedule: see
   benchmarks/trainers/budget.py; CUDA when available, with nnU-Net's own ``3d_fullres`` network);
6. ``nnUNetv2_predict`` on the test images; 7. ``nnUNetv2_evaluate_folder`` against their full labels;
8. overlay PNGs (image, clicks, pseudo-label, prediction, truth) of a few cases.
The last line printed is ``mean Dice: X.XXX`` (test set, foreground classes).

nnUNet_raw / nnUNet_preprocessed / nnUNet_results default to subfolders of the output folder unless set.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUDGET_TRAINERS = REPO / "benchmarks" / "trainers"
TRAINER = "nnUNetTrainerPASeg_budget"
STEPS = 8


def step(n: int, text: str) -> None:
    print(f"\n[demo {n}/{STEPS}] {text}", flush=True)


def run(env: dict, name: str, *args: str | os.PathLike) -> None:
    """Run a console script of this environment, its output streaming to the terminal."""
    cmd = [str(BIN / name), *map(str, args)]
    print("$ " + " ".join([name, *map(str, args)]), flush=True)
    if subprocess.run(cmd, env=env).returncode != 0:
        sys.exit(f"demo: {name} failed (command above); fix the cause and rerun: finished steps are skipped")


def environment(out: Path, epochs: int, iterations: int) -> dict:
    env = dict(os.environ)
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        env.setdefault(key, str(out / key))
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    env["nnUNet_extTrainer"] = os.pathsep.join(filter(None, [str(BUDGET_TRAINERS), env.get("nnUNet_extTrainer")]))
    # The working tree's code, not an older installed copy (as in the tests).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # nnU-Net's default data-augmentation worker count is sized for GPU servers.
    env.setdefault("nnUNet_n_proc_DA", str(max(1, min(8, (os.cpu_count() or 2) // 2))))
    env.setdefault("PASEG_TORCH_THREADS", str(max(1, (os.cpu_count() or 2) - int(env["nnUNet_n_proc_DA"]))))
    env["PASEG_BUDGET_EPOCHS"], env["PASEG_BUDGET_ITERATIONS"] = str(epochs), str(iterations)
    return env


def preprocessed_complete(folder: Path, configuration_dir: str, num_training: int) -> bool:
    data = folder / configuration_dir
    return (folder / "nnUNetPlans.json").is_file() and data.is_dir() and len(list(data.glob("*.pkl"))) == num_training


def slice_through(truth: np.ndarray) -> int:
    """Index along axis 0 through the middle of the labelled structure."""
    return int(round(np.argwhere(truth > 0)[:, 0].mean()))


def overlay(path: Path, title: str, image: np.ndarray, truth: np.ndarray, panels: list[tuple[str, np.ndarray | None]],
            clicks: np.ndarray | None, num_classes: int) -> None:
    """One row of panels on the slice through the structure: label maps in colour, the truth's outline in white.

    ``clicks``: annotation volume (1/2, 3/4, ...: background/foreground clicks of each object); clicks off the
    slice are projected onto it (small, faint markers).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    z = slice_through(truth)
    lo, hi = np.percentile(image[image > 0], [1, 99]) if (image > 0).any() else (0, 1)
    colours = ListedColormap([(0, 0, 0, 0), *plt.cm.tab10.colors[1:num_classes + 1], (0.2, 0.5, 1.0, 1)])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (name, labels) in zip(axes[0], panels):
        ax.imshow(image[z], cmap="gray", vmin=lo, vmax=hi, origin="lower")
        if labels is not None:
            ax.imshow(np.ma.masked_equal(labels[z], 0), cmap=colours, vmin=0, vmax=num_classes + 1, alpha=0.55,
                      origin="lower", interpolation="nearest")
            ax.contour(truth[z] > 0, levels=[0.5], colors="white", linewidths=0.8, origin="lower")
        elif clicks is not None:
            for value, marker, colour in ((0, "x", "red"), (1, "*", "lime")):  # 0: background, 1: foreground clicks
                points = np.argwhere((clicks > 0) & (clicks % 2 == (value + 1) % 2))
                on = points[:, 0] == z
                ax.scatter(points[~on, 2], points[~on, 1], marker=marker, c=colour, s=25, alpha=0.45)
                ax.scatter(points[on, 2], points[on, 1], marker=marker, c=colour, s=90)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", type=Path, default=REPO / "demo_output", help="default: demo_output/")
    parser.add_argument("--fresh", action="store_true", help="delete the output folder first")
    parser.add_argument("-d", "--dataset_id", type=int, default=801, help="nnU-Net dataset id (default 801)")
    parser.add_argument("--epochs", type=int, default=24, help="training epochs (default 24)")
    parser.add_argument("--iterations", type=int, default=50, help="iterations per epoch (default 50)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available, else cpu")
    parser.add_argument("-np", "--num_processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--examples", type=int, default=3, help="overlay PNGs of this many training and test cases")
    args = parser.parse_args(argv)
    started = time.time()
    out = args.output.resolve()
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment(out, args.epochs, args.iterations)
    if args.device is None:
        import torch
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    configuration = "3d_small" if args.device == "cpu" else "3d_fullres"
    name = "AtlasVentricles"
    dataset = f"Dataset{args.dataset_id:03d}_{name}"
    raw = Path(env["nnUNet_raw"]) / dataset
    preprocessed = Path(env["nnUNet_preprocessed"]) / dataset
    cohort = out / "cohort"
    np_ = str(args.num_processes)
    timings = {}

    def timed(key: str, t0: float) -> None:
        timings[key] = time.time() - t0

    t0 = time.time()
    step(1, f"real-data cohort -> {cohort}")
    if (cohort / "cohort.json").is_file():
        print("already built")
    else:
        run(env, "paseg_build_atlas_cohort", "-o", cohort, "-np", np_)
    timed("cohort", t0)

    t0 = time.time()
    step(2, f"clicks -> geodesic pseudo-labels -> {raw}")
    if (raw / "dataset.json").is_file():
        print("already converted")
    else:
        run(env, "paseg_convert", "-i", cohort / "train/images", "-a", cohort / "train/clicks",
            "--gt", cohort / "train/labels", "--images_ts", cohort / "test/images", "--labels_ts", cohort / "test/labels",
            "-d", args.dataset_id, "-n", name, "--classes", "lateral_ventricles", "--channel_names", "T1", "-np", np_,
            "--preview")
    num_training = json.loads((raw / "dataset.json").read_text())["numTraining"]
    timed("convert", t0)

    t0 = time.time()
    step(3, "nnU-Net planning and preprocessing")
    if preprocessed_complete(preprocessed, "nnUNetPlans_3d_fullres", num_training):
        print("already preprocessed")
    else:
        run(env, "nnUNetv2_plan_and_preprocess", "-d", args.dataset_id, "-c", "3d_fullres", "-np",
            str(min(2, args.num_processes)), "--verify_dataset_integrity")
    timed("plan_and_preprocess", t0)

    step(4, f"configuration {configuration}")
    if configuration == "3d_small":
        run(env, "paseg_add_small_plans", "-d", args.dataset_id)

    t0 = time.time()
    step(5, f"training {TRAINER} on {args.device}: {args.epochs} epochs x {args.iterations} iterations")
    fold_dir = Path(env["nnUNet_results"]) / dataset / f"{TRAINER}__nnUNetPlans__{configuration}" / "fold_all"
    if (fold_dir / "checkpoint_final.pth").is_file():
        print("already trained")
    else:
        resume = ["--c"] if (fold_dir / "checkpoint_latest.pth").is_file() else []
        run(env, "nnUNetv2_train", args.dataset_id, configuration, "all", "-tr", TRAINER, "-device", args.device, *resume)
    timed("train", t0)

    t0 = time.time()
    step(6, "predicting the test images (and a few training images, for the overlays)")
    examples = out / "example_inputs"
    train_cases = sorted(p.name[: -len(".nii.gz")] for p in (raw / "labelsTr").glob("*.nii.gz"))[: args.examples]
    examples.mkdir(exist_ok=True)
    for case in train_cases:
        shutil.copy(raw / "imagesTr" / f"{case}_0000.nii.gz", examples)
    predict = ["-d", args.dataset_id, "-c", configuration, "-f", "all", "-tr", TRAINER, "-device", args.device,
               "-npp", "1", "-nps", "1", "--continue_prediction"]
    run(env, "nnUNetv2_predict", "-i", raw / "imagesTs", "-o", out / "predictions", *predict)
    run(env, "nnUNetv2_predict", "-i", examples, "-o", out / "predictions_train", *predict)
    timed("predict", t0)

    step(7, "evaluating the test predictions against the full labels")
    summary_file = out / "predictions" / "summary.json"
    run(env, "nnUNetv2_evaluate_folder", raw / "labelsTs", out / "predictions", "-djfile", raw / "dataset.json",
        "-pfile", preprocessed / "nnUNetPlans.json", "-o", summary_file, "-np", np_)
    summary = json.loads(summary_file.read_text())
    dice = {Path(row["prediction_file"]).name[: -len(".nii.gz")]: row["metrics"]["1"]["Dice"]
            for row in summary["metric_per_case"]}
    mean_dice = summary["foreground_mean"]["Dice"]
    predicted_nothing = all(row["metrics"]["1"]["n_pred"] == 0 for row in summary["metric_per_case"])

    step(8, f"overlays -> {out / 'overlays'}")
    overlays = out / "overlays"
    overlays.mkdir(exist_ok=True)
    for case in train_cases:
        truth = read(cohort / "train/labels" / f"{case}.nii.gz")
        overlay(overlays / f"{case}.png", f"{case} (training case: trained on its clicks)",
                read(raw / "imagesTr" / f"{case}_0000.nii.gz"), truth,
                [("image + 7 clicks per ventricle", None), ("pseudo-label (blue: unlabelled)", read(raw / "labelsTr" / f"{case}.nii.gz")),
                 ("prediction", read(out / "predictions_train" / f"{case}.nii.gz")), ("truth", truth)],
                read(cohort / "train/clicks" / f"{case}.nii.gz"), 1)
    for case in sorted(dice)[: args.examples]:
        truth = read(raw / "labelsTs" / f"{case}.nii.gz")
        overlay(overlays / f"{case}.png", f"{case} (test case): Dice {dice[case]:.3f}",
                read(raw / "imagesTs" / f"{case}_0000.nii.gz"), truth,
                [("image", None), ("prediction", read(out / "predictions" / f"{case}.nii.gz")), ("truth", truth)],
                None, 1)
    print("\n".join(str(p) for p in sorted(overlays.glob("*.png"))))
    if (raw / "previews" / "overview.png").is_file():
        print(f"pseudo-labels of all training cases: {raw / 'previews' / 'overview.png'}")

    quality = json.loads((raw / "pseudo_label_quality.json").read_text())["summary"]
    print("\npseudo-labels of the training cases (mean): "
          + ", ".join(f"{metric} {v['mean']:.3f}" for metric, v in quality.items() if v["mean"] is not None))
    print("test Dice per case: " + ", ".join(f"{c} {d:.3f}" for c, d in sorted(dice.items())))
    print("time: " + ", ".join(f"{k} {v / 60:.1f} min" for k, v in timings.items())
          + f"; total {(time.time() - started) / 60:.1f} min")
    if predicted_nothing:
        print(f"note: the model predicted no foreground on any test case. With {args.epochs} x {args.iterations} "
              "iterations the network sometimes has not yet found the small labelled foreground (its pseudo Dice "
              f"in the training log in {fold_dir} stays 0). Rerun with more epochs, e.g. --fresh --epochs 48.")
    print(f"mean Dice: {mean_dice:.3f}")


if __name__ == "__main__":
    main()
