"""How two trained models of the accuracy benchmark combine: per voxel the argmax of w p_A + (1 - w) p_B (at w 0.5
what ``nnUNetv2_ensemble`` does), scored on the test cases as the benchmark scores one model.

    .venv/bin/python benchmarks/ensemble_check.py --work W --seed 10 nnUNetTrainerPASeg nnUNetTrainerPASeg_pCE \\
        [--target ventricles] [--epochs 24] [--plans nnUNetPlans] [--weights 0 0.3 0.5 0.7 1] [--out X.md]

Reads the benchmark's work folder of that seed and budget (``accuracy.py --work W --seed S --epochs E``: both
trainers trained there on the clicks dataset ``Dataset{BASE + 2 SEED}_*``), predicts its test images with each model
through ``nnUNetv2_predict --save_probabilities`` (into ``W/ensemble/seed{S}/TRAINER``; skipped when done) and
prints, per weight w of the first model, Dice, HD95 and pooled precision / recall per class (``--out``: also as
markdown). w = 1 and w = 0 are the two models alone, so their rows repeat the benchmark's.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.accuracy import default_base_id, score_case, summarise_run  # noqa: E402
from benchmarks.atlas_cohort import TARGETS  # noqa: E402


def mixed_segmentation(prob_a: np.ndarray, prob_b: np.ndarray, weight: float) -> np.ndarray:
    """argmax over classes of ``weight * prob_a + (1 - weight) * prob_b``; (C, *spatial) probabilities -> labels.

    Example:
        >>> a, b = np.array([[0.9], [0.1]]), np.array([[0.3], [0.7]])
        >>> [int(mixed_segmentation(a, b, w)[0]) for w in (0.0, 0.5, 1.0)]
        [1, 0, 0]
    """
    if prob_a.shape != prob_b.shape:
        raise ValueError(f"probabilities of different shapes: {prob_a.shape} and {prob_b.shape}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    return np.argmax(weight * prob_a + (1.0 - weight) * prob_b, axis=0)


def score_mixtures(folder_a: Path, folder_b: Path, truth_dir: Path, weights: Sequence[float],
                   classes: list[str]) -> dict[float, dict]:
    """{w: the benchmark's per-class summary (``summarise_run``)} of the mixtures of the two folders' probabilities
    (``CASE.npz`` with ``probabilities``, (C, Z, Y, X) on the test image's grid), over the cases of ``truth_dir``."""
    scores: dict[float, dict] = {w: {} for w in weights}
    for truth_file in tqdm(sorted(truth_dir.glob("*.nii.gz")), desc="scoring", unit="case"):
        case = truth_file.name[: -len(".nii.gz")]
        missing = [f for f in (folder_a / f"{case}.npz", folder_b / f"{case}.npz") if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"no probabilities {missing[0]} for the test case {case}")
        truth_img = sitk.ReadImage(str(truth_file))
        truth, spacing = sitk.GetArrayFromImage(truth_img), truth_img.GetSpacing()[::-1]
        prob_a, prob_b = (np.load(folder / f"{case}.npz")["probabilities"] for folder in (folder_a, folder_b))
        if prob_a.shape[1:] != truth.shape:
            raise ValueError(f"{folder_a / case}.npz: probabilities of shape {prob_a.shape[1:]}, its label "
                             f"{truth_file} {truth.shape}")
        for w in weights:
            scores[w][case] = score_case(mixed_segmentation(prob_a, prob_b, w), truth, spacing, len(classes))
    return {w: summarise_run(s, classes) for w, s in scores.items()}


def table(summaries: dict[float, dict], classes: list[str], trainer_a: str, trainer_b: str) -> list[str]:
    lines = [f"| w ({trainer_a}'s share; 1 - w: {trainer_b}) | mean Dice | "
             + " | ".join(f"{c}: Dice, precision / recall, HD95 (mm)" for c in classes) + " |",
             "|" + "---|" * (2 + len(classes))]
    for w, summary in summaries.items():
        cells = [f"{w:g}", f"{np.mean([summary[c]['Dice'] for c in classes]):.3f}"]
        cells += [f"{m['Dice']:.3f}, {m['precision']:.2f} / {m['recall']:.2f}, {m['HD95']:.1f}"
                  for m in (summary[c] for c in classes)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trainers", nargs=2, metavar="TRAINER", help="the two trainers (A, B) of the benchmark")
    parser.add_argument("--work", type=Path, required=True, help="the accuracy benchmark's work folder")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--target", choices=sorted(TARGETS), default="ventricles")
    parser.add_argument("--base_id", type=int, help="the benchmark's base dataset id (default: 820, deepgrey 860)")
    parser.add_argument("--epochs", type=int, default=24, help="the budget the models were trained at")
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--configuration", default="3d_small")
    parser.add_argument("--plans", default=harness.DEFAULT_PLANS)
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda when available")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7, 1.0])
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    if any(not 0.0 <= w <= 1.0 for w in args.weights):
        parser.error("--weights must lie in [0, 1]")
    if args.device is None:
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    base = args.base_id if args.base_id is not None else default_base_id(args.target)
    env = harness.nnunet_environment(args.work, args.epochs, args.iterations)
    raw = next(Path(env["nnUNet_raw"]).glob(f"Dataset{base + 2 * args.seed:03d}_*"), None)
    if raw is None:
        parser.error(f"no clicks dataset of seed {args.seed} under {args.work}/nnUNet_raw (base id {base})")
    folders = []
    for trainer in args.trainers:
        fold = harness.fold_dir(env, raw.name, f"{trainer}_budget", args.configuration, args.plans)
        if not (fold / "checkpoint_final.pth").is_file():
            parser.error(f"{trainer} is not trained in {fold} (run benchmarks/accuracy.py with the same --work, "
                         f"--seeds and --epochs first)")
        out = args.work / "ensemble" / f"seed{args.seed}" / trainer
        if not out.is_dir() or len(list(out.glob("*.npz"))) < len(list((raw / "imagesTs").glob("*_0000.nii.gz"))):
            harness.run(env, "nnUNetv2_predict", "-i", raw / "imagesTs", "-o", out, "-d", raw.name, "-c",
                        args.configuration, "-f", "all", "-tr", f"{trainer}_budget", "-p", args.plans, "-device",
                        args.device, "-npp", 1, "-nps", 1, "--save_probabilities", prefix="ensemble")
        folders.append(out)
    classes = list(TARGETS[args.target])
    summaries = score_mixtures(*folders, raw / "labelsTs", args.weights, classes)
    lines = [f"Mixtures of {args.trainers[0]} (A) and {args.trainers[1]} (B): argmax of w p_A + (1 - w) p_B; "
             f"{args.target}, seed {args.seed}, {args.epochs} x {args.iterations} iterations, plans `{args.plans}`, "
             f"`{args.configuration}`; {len(list((raw / 'labelsTs').glob('*.nii.gz')))} test cases.", "",
             *table(summaries, classes, *args.trainers), "",
             f"Command: `python benchmarks/ensemble_check.py {' '.join(sys.argv[1:])}`"]
    harness.print_table(lines, args.out, "Two models of the accuracy benchmark combined")


if __name__ == "__main__":
    main()
