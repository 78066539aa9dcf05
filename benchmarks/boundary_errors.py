"""Where a model's wrong voxels lie relative to the full label's surface: the depth of each missed voxel inside the
structure and the distance of each false positive outside it, in voxels, over a seed's test cases.

    .venv/bin/python benchmarks/boundary_errors.py --work benchmark_output/ventricles --seed 10 \\
        nnUNetTrainerPASeg_pCE nnUNetTrainerPASeg

Reads ``WORK/cohort_seed{SEED}/test/labels`` and ``WORK/predictions/seed{SEED}/TRAINER`` of the accuracy benchmark;
distances are ``scipy.ndimage.distance_transform_edt`` of the label (depth) and of its complement (distance), so 1 is
the first layer inside or outside the surface.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage


def layer_shares(distances: np.ndarray) -> str:
    """Share of the voxels in layers 1, 2, 3 and beyond."""
    return " / ".join(f"{np.mean((distances > k - 1) & (distances <= k)):.2f}" for k in (1, 2, 3)) \
        + f" / {np.mean(distances > 3):.2f}"


def boundary_errors(work: Path, seed: int, trainer: str) -> tuple[np.ndarray, np.ndarray]:
    """(depths of the missed voxels, distances of the false positives) over the seed's test cases."""
    truth_dir, pred_dir = work / f"cohort_seed{seed}" / "test" / "labels", work / "predictions" / f"seed{seed}" / trainer
    missed, extra = [], []
    for truth_file in sorted(truth_dir.glob("*.nii.gz")):
        truth = sitk.GetArrayFromImage(sitk.ReadImage(str(truth_file))) > 0
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_dir / truth_file.name))) > 0
        missed.append(ndimage.distance_transform_edt(truth)[truth & ~pred])
        extra.append(ndimage.distance_transform_edt(~truth)[pred & ~truth])
    return np.concatenate(missed), np.concatenate(extra)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the accuracy benchmark's work folder")
    parser.add_argument("--seed", type=int, required=True, help="cohort seed")
    parser.add_argument("trainers", nargs="+", help="trainer names with predictions in that folder")
    args = parser.parse_args()
    print("trainer | missed voxels: depth 1 / 2 / 3 / > 3 | false positives: distance 1 / 2 / 3 / > 3")
    for trainer in args.trainers:
        missed, extra = boundary_errors(args.work, args.seed, trainer)
        print(f"{trainer} | {len(missed)}: {layer_shares(missed)} | {len(extra)}: {layer_shares(extra)}")


if __name__ == "__main__":
    main()
