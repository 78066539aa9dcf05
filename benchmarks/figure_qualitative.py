"""One picture of what the methods do: a slice of a test case of the accuracy benchmark, with its 7 clicks per
object, the pseudo-label they give, and each trained model's prediction against the full label.

    .venv/bin/python benchmarks/figure_qualitative.py --work benchmark_output/ventricles --seed 0 \\
        [--case test_000] [--pseudo_labels extremes] [--out docs/images/qualitative.png]

Test cases have no clicks in the benchmark (their full labels score the models), so the clicks are simulated on the
case's full label as for the training cases (``simulate_clicks``: deepest point, no jitter) and the pseudo-label is
made by ``--pseudo_labels`` (default: ``paseg_convert``'s default method, the one the benchmark trains on). Panels, left to right: the image with the clicks of the objects crossing the slice
(foreground click: star; background clicks projected onto the slice: crosses), the pseudo-label (foreground red,
``ignore`` yellow), then each model found in ``WORK/predictions/seed{SEED}/`` (full labels, pCE, PASeg, PASegAux,
SCM) in red with the full label's outline in green, and the case's Dice in the title. The slice is the axial slice
(first axis) with the most foreground.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.accuracy import dice  # noqa: E402
from benchmarks.harness import REPO  # noqa: E402
from point_tools.pseudo_labels import DEFAULT_METHOD, METHODS, pseudo_label  # noqa: E402
from point_tools.simulate import simulate_clicks  # noqa: E402

MODELS = {"nnUNetTrainer": "full labels", "nnUNetTrainerPASeg_pCE": "pCE (partial loss)",
          "nnUNetTrainerPASeg": "PASeg (stage 1)", "nnUNetTrainerPASegAux": "PASegAux (stage 1)",
          "nnUNetTrainerPASegAux_pCE": "PASegAux_pCE (stage 1)", "nnUNetTrainerSCM": "SCM (stage 2)"}


def draw(work: Path, seed: int, case: str, out: Path, method: str = DEFAULT_METHOD) -> list[str]:
    """Write the figure; returns the models it shows."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    red, yellow = ListedColormap(["red"]), ListedColormap(["yellow"])

    cohort = work / f"cohort_seed{seed}" / "test"
    image_file, label_file = cohort / "images" / f"{case}_0000.nii.gz", cohort / "labels" / f"{case}.nii.gz"
    for path in (image_file, label_file):
        if not path.is_file():
            raise SystemExit(f"figure_qualitative: {path} does not exist (is --work an accuracy benchmark folder?)")
    image = sitk.ReadImage(str(image_file))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    truth = sitk.GetArrayFromImage(sitk.ReadImage(str(label_file))) > 0
    spacing = image.GetSpacing()[::-1]
    objects = simulate_clicks(truth.astype(np.uint8), spacing, seed=seed)
    pseudo = pseudo_label(array[None], spacing, objects, method=method, device="cpu")
    files = {name: work / "predictions" / f"seed{seed}" / name / f"{case}.nii.gz" for name in MODELS}
    predictions = {name: sitk.GetArrayFromImage(sitk.ReadImage(str(path))) > 0
                   for name, path in files.items() if path.is_file()}
    z = int(truth.sum((1, 2)).argmax())

    panels = 2 + len(predictions)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.6))
    low, high = np.percentile(array[z], [1, 99])
    for ax in axes:
        ax.imshow(array[z], cmap="gray", vmin=low, vmax=high)
        ax.set_axis_off()
    axes[0].set_title(f"{case}, 7 clicks per object", fontsize=9)
    for obj in objects:
        (lz, *_), (hz, *_) = obj.box()
        if lz <= z <= hz:
            axes[0].plot(obj.foreground[2], obj.foreground[1], "*", color="white", markersize=10)
            for point in obj.background:
                axes[0].plot(point[2], point[1], "x", color="cyan", markersize=7)
    ignore = pseudo[z] == pseudo.max()
    axes[1].imshow(np.ma.masked_where(~ignore, ignore), cmap=yellow, alpha=0.35)
    fg = (pseudo[z] > 0) & ~ignore
    axes[1].imshow(np.ma.masked_where(~fg, fg), cmap=red, alpha=0.8)
    axes[1].set_title(f"{method} pseudo-label: foreground (red) {fg.sum()},\nignore (yellow) {ignore.sum()} voxels",
                      fontsize=9)
    for ax, (name, pred) in zip(axes[2:], predictions.items()):
        ax.imshow(np.ma.masked_where(~pred[z], pred[z]), cmap=red, alpha=0.5)
        ax.contour(truth[z], levels=[0.5], colors="lime", linewidths=1.0)
        ax.set_title(f"{MODELS[name]}\nDice {dice(pred, truth):.3f}", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return list(predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the accuracy benchmark's work folder")
    parser.add_argument("--seed", type=int, required=True, help="cohort seed")
    parser.add_argument("--case", default="test_000", help="test case (default test_000)")
    parser.add_argument("--pseudo_labels", choices=tuple(METHODS), default=DEFAULT_METHOD,
                        help=f"pseudo-label method drawn (default {DEFAULT_METHOD}, paseg_convert's)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "qualitative.png")
    args = parser.parse_args()
    shown = draw(args.work, args.seed, args.case, args.out, args.pseudo_labels)
    print(f"wrote {args.out}: {', '.join(MODELS[m] for m in shown) or 'no trained model found'}")


if __name__ == "__main__":
    main()
