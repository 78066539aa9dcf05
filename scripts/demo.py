"""The demo: from 7 clicks per object to a 3D segmentation model, scored against full labels.

    bash scripts/demo.sh [--output demo_output] [--fresh]     (set-up + this driver)

Steps, each printed as it runs and skipped when its result is already there (``--fresh`` starts over):
1. a cohort of real brain MRI with real labels (``python -m benchmarks.atlas_cohort``: the lateral ventricles, 24 training
   and 12 test cases derived from the MNI152 template and its neuromorphometrics labels) with 7 simulated clicks
   per ventricle on the training cases;
2. ``paseg_convert --preview``: pseudo-labels (its default method, ``extremes``) with nnU-Net's ignore label, their quality against the full
   labels, and pictures of them (``previews/CASE.png`` and ``previews/overview.png`` in the dataset folder);
3. ``nnUNetv2_plan_and_preprocess`` and, on the CPU, ``paseg_add_small_plans`` (a CPU-sized network, ``3d_small``);
4. ``nnUNetv2_train ... -tr nnUNetTrainerPASeg_budget`` (stage 1 of PA-Seg on a fixed, short schedule: see
   benchmarks/trainers/lab_trainers.py; CUDA when available, with nnU-Net's own ``3d_fullres`` network);
5. ``nnUNetv2_predict`` on the test images; 6. ``nnUNetv2_evaluate_folder`` against their full labels;
7. overlay PNGs (image, clicks, pseudo-label, prediction, truth) of a few cases.
The last line printed is ``mean Dice: X.XXX`` (test set, foreground classes).

nnUNet_raw / nnUNet_preprocessed / nnUNet_results default to subfolders of the output folder unless set.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: benchmarks.harness
from benchmarks.harness import (REPO, SMALL_MAX_FEATURES, RunFailed, convert_clicks, fold_dir,  # noqa: E402
                                nnunet_environment, plan_and_preprocess, predict, run, train)

TRAINER = "nnUNetTrainerPASeg_budget"
STEPS = 7


def step(n: int, text: str) -> None:
    print(f"\n[demo {n}/{STEPS}] {text}", flush=True)


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
    parser.add_argument("--max_features", type=int, default=SMALL_MAX_FEATURES,
                        help=f"on the CPU, width of the widest stage of the small network (default {SMALL_MAX_FEATURES})")
    parser.add_argument("-np", "--num_processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--examples", type=int, default=3, help="overlay PNGs of this many training and test cases")
    args = parser.parse_args(argv)
    started = time.time()
    out = args.output.resolve()
    if args.fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    env = nnunet_environment(out, args.epochs, args.iterations, own_folders=False)
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
        run(env, Path(sys.executable).name, "-m", "benchmarks.atlas_cohort", "-o", cohort, "-np", np_, prefix="demo")
    timed("cohort", t0)

    t0 = time.time()
    step(2, f"clicks -> pseudo-labels -> {raw}")
    convert_clicks(env, cohort, args.dataset_id, name, ["lateral_ventricles"], args.num_processes, preview=True,
                   prefix="demo")
    timed("convert", t0)

    t0 = time.time()
    step(3, f"nnU-Net planning and preprocessing, configuration {configuration}")
    plan_and_preprocess(env, args.dataset_id, raw, args.num_processes, configuration, args.max_features,
                        prefix="demo")
    timed("plan_and_preprocess", t0)

    t0 = time.time()
    step(4, f"training {TRAINER} on {args.device}: {args.epochs} epochs x {args.iterations} iterations")
    train(env, dataset, TRAINER, configuration, args.device, prefix="demo")
    fold = fold_dir(env, dataset, TRAINER, configuration)
    timed("train", t0)

    t0 = time.time()
    step(5, "predicting the test images (and a few training images, for the overlays)")
    examples = out / "example_inputs"
    train_cases = sorted(p.name[: -len(".nii.gz")] for p in (raw / "labelsTr").glob("*.nii.gz"))[: args.examples]
    examples.mkdir(exist_ok=True)
    for case in train_cases:
        shutil.copy(raw / "imagesTr" / f"{case}_0000.nii.gz", examples)
    predict(env, raw / "imagesTs", out / "predictions", dataset, TRAINER, configuration, args.device, prefix="demo")
    predict(env, examples, out / "predictions_train", dataset, TRAINER, configuration, args.device, prefix="demo")
    timed("predict", t0)

    step(6, "evaluating the test predictions against the full labels")
    summary_file = out / "predictions" / "summary.json"
    run(env, "nnUNetv2_evaluate_folder", raw / "labelsTs", out / "predictions", "-djfile", raw / "dataset.json",
        "-pfile", preprocessed / "nnUNetPlans.json", "-o", summary_file, "-np", np_, prefix="demo")
    summary = json.loads(summary_file.read_text())
    dice = {Path(row["prediction_file"]).name[: -len(".nii.gz")]: row["metrics"]["1"]["Dice"]
            for row in summary["metric_per_case"]}
    mean_dice = summary["foreground_mean"]["Dice"]
    predicted_nothing = all(row["metrics"]["1"]["n_pred"] == 0 for row in summary["metric_per_case"])

    step(7, f"overlays -> {out / 'overlays'}")
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
              f"in the training log in {fold} stays 0). Rerun with more epochs, e.g. --fresh --epochs 48.")
    print(f"mean Dice: {mean_dice:.3f}")


if __name__ == "__main__":
    try:
        main()
    except RunFailed as error:
        sys.exit(f"demo: {error}")
