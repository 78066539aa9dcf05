"""What an intensity rule on the one-voxel band around a model's prediction buys: the baseline the PA-Seg paper does
not have. Each predicted object's surface layer (``shrink``) and first outside layer (``grow``) are re-decided by
the partial-volume level of the voxel between the object's mean intensity and its surround's, scored on the test
cases as the accuracy benchmark scores one model.

    .venv/bin/python benchmarks/boundary_snap.py --work W --seed 10 nnUNetTrainerPASeg_pCE nnUNetTrainerPASeg \\
        [--modes none shrink grow both] [--level 0.5] [--out X.md]

Reads ``WORK/cohort_seed{SEED}/test/{images,labels}`` and ``WORK/predictions/seed{SEED}/TRAINER`` of the accuracy
benchmark (``accuracy.py --work W``; the images' first channel). A measurement, not a step of the method: on the
ventricles the partial loss errs one or two voxels outside the objects and PASeg one inside (docs/experiments.md),
and this says how much of the difference between them a rule that knows only the image recovers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from tqdm import tqdm

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.accuracy import score_case, summarise_run  # noqa: E402
from benchmarks.atlas_cohort import TARGETS  # noqa: E402

MODES = ("none", "shrink", "grow", "both")
# The surround's sample: background voxels more than 2 and at most 4 voxels outside the predicted object, beyond the
# band the rule re-decides and its partial-volume voxels.
SURROUND_VOXELS = (2.0, 4.0)


def partial_volume_level(image: np.ndarray, obj: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per voxel (Z, Y, X) the position of its intensity between the object's and its surround's means:
    ``a = (I - mean_surround) / (mean_object - mean_surround)``, 1 at the object's mean, 0 at the surround's.

    image: (Z, Y, X). obj: the object's voxels (its mean is taken over them eroded by one voxel, without their own
    partial-volume layer, unless that leaves fewer than 10). background: voxels that may be the surround, whose
    sample is those at a distance in ``SURROUND_VOXELS`` from ``obj``. NaN everywhere when either sample is empty or
    the two means are equal.
    """
    core = ndimage.binary_erosion(obj)
    if core.sum() < 10:
        core = obj
    distance = ndimage.distance_transform_edt(~obj)
    surround = (distance > SURROUND_VOXELS[0]) & (distance <= SURROUND_VOXELS[1]) & background
    if not core.any() or not surround.any():
        return np.full(image.shape, np.nan)
    mean_object, mean_surround = float(image[core].mean()), float(image[surround].mean())
    if mean_object == mean_surround:
        return np.full(image.shape, np.nan)
    return (image - mean_surround) / (mean_object - mean_surround)


def snap_band(image: np.ndarray, prediction: np.ndarray, mode: str, level: float = 0.5) -> np.ndarray:
    """``prediction`` (Z, Y, X) labels with each class's one-voxel band re-decided by ``partial_volume_level``.

    ``shrink``: the class's surface voxels (not in its one-voxel erosion) with a < ``level`` become background;
    ``grow``: background voxels touching the class (6-neighbours) with a >= ``level`` join it; ``both``: the two;
    ``none``: the prediction unchanged. Classes are re-decided one after another, each against its own surround.

    Example:
        >>> image = np.zeros((15, 15, 15)); image[5:10, 5:10, 5:10] = 1.0  # a bright 5^3 cube
        >>> prediction = np.zeros(image.shape, np.uint8); prediction[4:11, 4:11, 4:11] = 1  # a layer too many
        >>> int((snap_band(image, prediction, "shrink") == 1).sum())
        125
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if image.shape != prediction.shape:
        raise ValueError(f"image {image.shape} and prediction {prediction.shape} differ in shape")
    out = prediction.copy()
    if mode == "none":
        return out
    for label in np.unique(prediction[prediction > 0]):
        predicted = out == label
        background = out == 0
        level_map = partial_volume_level(image, predicted, background)
        obj = predicted
        if mode in ("grow", "both"):
            ring = ndimage.binary_dilation(predicted) & ~predicted & background
            obj = obj | (ring & (level_map >= level))
        if mode in ("shrink", "both"):
            surface = predicted & ~ndimage.binary_erosion(predicted)
            obj = obj & ~(surface & (level_map < level))
        out[predicted & ~obj] = 0
        out[obj] = label
    return out


def score_snapped(work: Path, seed: int, trainer: str, modes: Sequence[str], level: float,
                  classes: list[str]) -> dict[str, dict]:
    """{mode: the benchmark's per-class summary (``summarise_run``)} of ``trainer``'s test predictions snapped."""
    cohort, pred_dir = work / f"cohort_seed{seed}" / "test", work / "predictions" / f"seed{seed}" / trainer
    scores: dict[str, dict] = {mode: {} for mode in modes}
    truth_files = sorted((cohort / "labels").glob("*.nii.gz"))
    if not truth_files:
        raise FileNotFoundError(f"no test labels in {cohort / 'labels'}")
    for truth_file in tqdm(truth_files, desc=trainer, unit="case"):
        case = truth_file.name[: -len(".nii.gz")]
        files = (cohort / "images" / f"{case}_0000.nii.gz", pred_dir / truth_file.name)
        missing = [f for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{missing[0]} is missing for the test case {case}")
        truth_img = sitk.ReadImage(str(truth_file))
        truth, spacing = sitk.GetArrayFromImage(truth_img), truth_img.GetSpacing()[::-1]
        image, prediction = (sitk.GetArrayFromImage(sitk.ReadImage(str(f))) for f in files)
        if not image.shape == prediction.shape == truth.shape:
            raise ValueError(f"{case}: image {image.shape}, prediction {prediction.shape} and label {truth.shape} "
                             "differ in shape")
        image = image.astype(np.float32)
        for mode in modes:
            scores[mode][case] = score_case(snap_band(image, prediction, mode, level), truth, spacing, len(classes))
    return {mode: summarise_run(s, classes) for mode, s in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trainers", nargs="+", metavar="TRAINER", help="trainers with predictions in the work folder")
    parser.add_argument("--work", type=Path, required=True, help="the accuracy benchmark's work folder")
    parser.add_argument("--seed", type=int, required=True, help="cohort seed")
    parser.add_argument("--target", choices=sorted(TARGETS), default="ventricles")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--level", type=float, default=0.5,
                        help="partial-volume level of the boundary, 0 (surround) .. 1 (object); default 0.5")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    if not 0.0 < args.level < 1.0:
        parser.error(f"--level must lie strictly between 0 and 1, got {args.level}")
    classes = list(TARGETS[args.target])
    lines = [f"One-voxel band re-decided at partial-volume level {args.level:g}; {args.target}, seed {args.seed}, "
             f"work folder `{args.work}`.", "",
             "| trainer | band rule | mean Dice | mean HD95 (mm) | precision / recall (pooled, mean over classes) |",
             "|---|---|---|---|---|"]
    for trainer in args.trainers:
        for mode, summary in score_snapped(args.work, args.seed, trainer, args.modes, args.level, classes).items():
            values = [summary[c] for c in classes]
            lines.append(f"| {trainer} | {mode} | {np.mean([v['Dice'] for v in values]):.3f} | "
                         f"{np.nanmean([v['HD95'] for v in values]):.1f} | "
                         f"{np.nanmean([v['precision'] for v in values]):.2f} / "
                         f"{np.nanmean([v['recall'] for v in values]):.2f} |")
    lines += ["", f"Command: `python benchmarks/boundary_snap.py {' '.join(sys.argv[1:])}`"]
    harness.print_table(lines, args.out, "A one-voxel intensity rule on the benchmark's predictions")


if __name__ == "__main__":
    main()
