"""Where stage 1's regularisers put an object's boundary: the energies of the gated CRF and of variance minimisation,
with a trainer's settings, on masks cut at a range of intensity levels across the full label's surface.

    .venv/bin/python benchmarks/regulariser_boundary.py --work benchmark_output/ventricles --seed 10 \\
        nnUNetTrainerPASeg nnUNetTrainerPASeg_noVM nnUNetTrainerPASeg_vmVoxels [--out benchmarks/results/X.md]
        [--base_id 860 --target_class 2]   (another target's datasets; one class of several against the rest)

Reads the accuracy benchmark's preprocessed full-label dataset of that seed (``WORK/nnUNet_preprocessed/
Dataset{BASE + 2 SEED + 1}_*``, 3d_fullres: nnU-Net's normalised images and their labels). Per training image, with
``core`` the label eroded by 2 voxels, ``band`` the voxels within 2 of its surface and mu_in / mu_out the mean
intensity of the core / of the layer 2-3 voxels outside the label, the masks

    core | (band & x beyond mu_in + a (mu_out - mu_in)),   a = 0.10, 0.15, ..., 0.90

(``beyond``: on mu_in's side) go from the object's most extreme voxels (a small) to its surround's (a large). The
labels' own level is the ``a`` of the mask nearest to the label (highest Dice; 0.5 is the 50% partial-volume level).
For each trainer the level of the lowest CRF energy, of the lowest VM energy and of the lowest w_crf CRF + w_vm VM
(its weights) are given as mean ± std over the images: in the band, where the pseudo-labels say nothing, these
energies alone decide the boundary. The whole image is one patch (the benchmark's 3d_small patch covers it). A
trainer whose VM sums over the unlabelled voxels only (``vm_region = "unlabelled"``) gets its mask from the same
seed's pseudo-labels (the clicks dataset ``Dataset{BASE + 2 SEED}_*``, preprocessed alike).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.trainers.lab_trainers import lab_trainer  # noqa: E402
from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, VarianceMinimizationLoss  # noqa: E402
from nnunetv2_paseg.trainers.paseg import crf_grid_scales, crf_weight  # noqa: E402

LEVELS = np.round(np.arange(0.10, 0.901, 0.05), 2)


def level_masks(label: np.ndarray, image: np.ndarray) -> list[np.ndarray]:
    """The masks of the module docstring, one per level in LEVELS."""
    ball = ndimage.generate_binary_structure(3, 1)
    core = ndimage.binary_erosion(label, ball, 2)
    band = ndimage.binary_dilation(label, ball, 2) & ~core
    outer = ndimage.binary_dilation(label, ball, 3) & ~ndimage.binary_dilation(label, ball, 2)
    mu_in, mu_out = image[core if core.any() else label].mean(), image[outer].mean()
    side = np.sign(mu_out - mu_in)  # +1: the object is darker than its surround
    return [core | (band & (side * image < side * (mu_in + a * (mu_out - mu_in)))) for a in LEVELS]


def regularisers(trainer: str, spacing: tuple[float, ...], num_foreground_classes: int = 1):
    """(CRF weight, CRF settings, CRF energy of (probs, image), w_vm, VM loss, VM on the unlabelled voxels only) with
    ``trainer``'s settings on this spacing and number of foreground classes; trainers with equal CRF settings share
    the CRF's energies."""
    cls = lab_trainer(trainer)
    if cls is None:
        raise SystemExit(f"regulariser_boundary: no trainer {trainer!r} in nnunetv2_paseg.trainers or the lab")
    scales = crf_grid_scales(spacing, cls.crf_grid_mm) if cls.crf_grid_mm is not None else (1.0,) * 3
    crf = MultiViewGatedCRFLoss(cls.crf_radius, cls.crf_sigma_xy_mm, cls.crf_sigma_intensity,
                                spacing=[s / f for s, f in zip(spacing, scales)])

    def crf_energy(probs: torch.Tensor, image: torch.Tensor) -> float:
        if any(f != 1.0 for f in scales):  # the trainer's copy of the patch (area interpolation)
            size = [max(1, round(s * f)) for s, f in zip(probs.shape[2:], scales)]
            probs, image = F.interpolate(probs, size=size, mode="area"), F.interpolate(image, size=size, mode="area")
        return crf(probs, image).item()

    settings = (cls.crf_radius, cls.crf_sigma_xy_mm, cls.crf_sigma_intensity, scales)
    return (crf_weight(cls.w_crf, num_foreground_classes, cls.crf_weight_per_class), settings, crf_energy, cls.w_vm,
            VarianceMinimizationLoss(normalise=cls.vm_normalise), cls.vm_region == "unlabelled")


def measure(folder: Path, spacing: tuple[float, ...], trainers: list[str], target_class: int = 1,
            clicks_folder: Path | None = None, num_foreground_classes: int = 1) -> dict:
    """{"labels": levels, trainer: {"crf": levels, "vm": levels, "total": levels}}, one level per image, for the
    ``target_class`` object against everything else; ``clicks_folder``: the preprocessed pseudo-labels of the same
    images, for trainers whose VM needs them; ``num_foreground_classes``: the dataset's, which sets the trainers'
    CRF weight (``crf_weight``)."""
    import blosc2

    terms = {t: regularisers(t, spacing, num_foreground_classes) for t in trainers}
    levels: dict = {"labels": [], **{t: {"crf": [], "vm": [], "total": []} for t in trainers}}
    for seg_file in sorted(folder.glob("*_seg.b2nd")):
        label = np.asarray(blosc2.open(str(seg_file))[:])[0] == target_class
        image = np.asarray(blosc2.open(str(seg_file).replace("_seg.b2nd", ".b2nd"))[:])[0].astype(np.float64)
        masks = level_masks(label, image)
        levels["labels"].append(LEVELS[np.argmax([2 * (m & label).sum() / (m.sum() + label.sum()) for m in masks])])
        guide = torch.from_numpy(image)[None, None]
        probs = [torch.from_numpy(np.stack([~m, m]).astype(np.float64))[None] for m in masks]
        crf_energies: dict = {}
        for trainer, (w_crf, settings, crf_energy, w_vm, vm, unlabelled) in terms.items():
            if settings not in crf_energies:
                crf_energies[settings] = np.array([crf_energy(p, guide) for p in probs])
            crf = crf_energies[settings]
            mask = None
            if unlabelled:
                if clicks_folder is None:
                    raise SystemExit(f"regulariser_boundary: {trainer} needs the pseudo-labels (clicks dataset)")
                mask = torch.from_numpy(np.asarray(blosc2.open(str(clicks_folder / seg_file.name))[:]) != 0)[None]
            var = np.array([vm(p, guide, mask).item() for p in probs])
            for key, energy in (("crf", crf), ("vm", var), ("total", w_crf * crf + w_vm * var)):
                levels[trainer][key].append(LEVELS[np.argmin(energy)])
    return levels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the accuracy benchmark's work folder")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--base_id", type=int, default=820, help="the benchmark's base dataset id (default 820)")
    parser.add_argument("--target_class", type=int, default=1,
                        help="the label value of the object whose boundary is measured (default 1)")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    parser.add_argument("trainers", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)  # many small kernels: one thread is fastest on a shared CPU
    dataset = next((args.work / "nnUNet_preprocessed").glob(f"Dataset{args.base_id + 2 * args.seed + 1:03d}_*"), None)
    if dataset is None:
        raise SystemExit(f"regulariser_boundary: no full-label dataset of seed {args.seed} under {args.work}")
    import json
    spacing = tuple(json.loads((dataset / "nnUNetPlans.json").read_text())["configurations"]["3d_fullres"]["spacing"])
    labels = json.loads((dataset / "dataset.json").read_text())["labels"]
    classes = {value: name for name, value in labels.items() if name not in ("background", "ignore")}
    if args.target_class not in classes:
        raise SystemExit(f"regulariser_boundary: --target_class {args.target_class} is not a foreground class of "
                         f"{dataset.name} ({classes})")
    clicks = next((args.work / "nnUNet_preprocessed").glob(f"Dataset{args.base_id + 2 * args.seed:03d}_*"), None)
    levels = measure(dataset / "nnUNetPlans_3d_fullres", spacing, args.trainers, args.target_class,
                     clicks_folder=clicks / "nnUNetPlans_3d_fullres" if clicks else None,
                     num_foreground_classes=len(classes))

    def fmt(values: list[float]) -> str:
        return f"{np.mean(values):.2f} ± {np.std(values):.2f}"

    lines = [f"Boundary level a of the lowest energy (0: the object's mean, 1: its surround's; mean ± std over the "
             f"{len(levels['labels'])} training images of {dataset.name}; object: "
             f"{classes[args.target_class]}, one of {len(classes)} foreground classes). Labels' own level: "
             f"{fmt(levels['labels'])}.", "",
             "| trainer | CRF | VM | w_crf CRF + w_vm VM |", "|---|---|---|---|"]
    lines += [f"| {t} | {fmt(levels[t]['crf'])} | {fmt(levels[t]['vm'])} | {fmt(levels[t]['total'])} |"
              for t in args.trainers]
    lines += ["", f"Command: `python benchmarks/regulariser_boundary.py --work {args.work} --seed {args.seed} "
              f"--base_id {args.base_id} --target_class {args.target_class} {' '.join(args.trainers)}`"]
    harness.print_table(lines, args.out, "Where stage 1's regularisers put the boundary")


if __name__ == "__main__":
    main()
