"""Whether stage 1's loss would rather erase a structure: per training image and class, the trainer's loss at full
ramp weight of the full label and of the same label with that class merged into the background.

    .venv/bin/python benchmarks/regulariser_erasure.py --work WORK --seed 10 --base_id 860 \\
        nnUNetTrainerPASeg nnUNetTrainerPASeg_noVM [--out benchmarks/results/X.md]

Reads the accuracy benchmark's preprocessed datasets of that seed (``WORK/nnUNet_preprocessed/``, 3d_fullres):
the full labels ``Dataset{BASE + 2 SEED + 1}_*`` and the pseudo-labels of the same images ``Dataset{BASE + 2 SEED}_*``
(the deep-grey target's base id is 860, the ventricles' 820). Each image is one patch, as the benchmark's 3d_small
patch about covers it. A labelling is scored as the softened one-hot prediction p = (1 - s) onehot + s / C
(s = ``--soften``, so that the cross-entropy is finite; ``--erode K``: each class of the label eroded by K voxels
first, a structure found short of its surface) with

    L = L_partial(log p, pseudo-labels) + w CRF(p, x) + w_vm VM(p, x)

with the trainer's weights (w: ``crf_weight``, the trainer's w_crf divided by the number of foreground classes) and
CRF / VM settings (``regulariser_boundary.regularisers``) and nnU-Net's partial
loss (Dice without background + CE, ``ignore`` skipped; the full-resolution output only). For each class c the
table gives, as means over the images, the change of the partial loss and of the regularisers when c is erased
(d partial > 0: the clicks' labels hold the class; d regularisers < 0: the regularisers pay for keeping it) and the
share of images where erasing c lowers L. The partial loss's price of erasing is paid only on the class's labelled
voxels, the regularisers' reward on its whole surface: a structure whose labelled surface is not an intensity edge
is where the second can outweigh the first.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import harness  # noqa: E402
from benchmarks.regulariser_boundary import regularisers  # noqa: E402


def partial_loss(ignore_label: int):
    """nnU-Net's loss for a dataset with an ``ignore`` label (``nnUNetTrainer._build_loss``, one output)."""
    from nnunetv2.training.loss.compound_losses import DC_and_CE_loss
    from nnunetv2.training.loss.dice import MemoryEfficientSoftDiceLoss

    return DC_and_CE_loss({"batch_dice": False, "smooth": 1e-5, "do_bg": False, "ddp": False}, {}, weight_ce=1,
                          weight_dice=1, ignore_label=ignore_label, dice_class=MemoryEfficientSoftDiceLoss)


def soft_onehot(label: np.ndarray, num_classes: int, soften: float) -> torch.Tensor:
    """(1, C, X, Y, Z) float64: (1 - soften) one-hot(label) + soften / C."""
    onehot = np.stack([label == c for c in range(num_classes)]).astype(np.float64)
    return torch.from_numpy((1 - soften) * onehot + soften / num_classes)[None]


def eroded(label: np.ndarray, voxels: int) -> np.ndarray:
    """``label`` with each class eroded by ``voxels`` (6-connectivity); the removed voxels become background."""
    if voxels == 0:
        return label
    ball = ndimage.generate_binary_structure(3, 1)
    out = np.zeros_like(label)
    for c in np.unique(label[label > 0]):
        out[ndimage.binary_erosion(label == c, ball, voxels)] = c
    return out


def measure(full_folder: Path, clicks_folder: Path, spacing: tuple[float, ...], trainers: list[str],
            num_classes: int, ignore_label: int, soften: float, erode: int = 0) -> dict:
    """{trainer: {class: {"partial": [...], "reg": [...], "erase": [...]}}}: per image, the change of the partial
    loss and of the weighted regularisers when the class is erased from the full label (each class eroded by
    ``erode`` voxels first: a structure found short of its surface), and whether L falls."""
    import blosc2

    terms = {t: regularisers(t, spacing, num_classes - 1) for t in trainers}
    loss = partial_loss(ignore_label)
    out = {t: {c: {"partial": [], "reg": [], "erase": []} for c in range(1, num_classes)} for t in trainers}
    for seg_file in sorted(full_folder.glob("*_seg.b2nd")):
        # -1 marks the voxels outside nnU-Net's crop mask; its training transforms make them background
        label = eroded(np.maximum(np.asarray(blosc2.open(str(seg_file))[:])[0], 0).astype(np.int64), erode)
        pseudo = torch.from_numpy(np.maximum(np.asarray(blosc2.open(str(clicks_folder / seg_file.name))[:]), 0)
                                  .astype(np.float64))
        image = np.asarray(blosc2.open(str(seg_file).replace("_seg.b2nd", ".b2nd"))[:])[0].astype(np.float64)
        guide = torch.from_numpy(image)[None, None]
        labellings = [label] + [np.where(label == c, 0, label) for c in range(1, num_classes)]
        probs = [soft_onehot(lab, num_classes, soften) for lab in labellings]
        partial = [loss(p.log(), pseudo[None]).item() for p in probs]
        crf_energies: dict = {}
        for trainer, (w_crf, settings, crf_energy, w_vm, vm, unlabelled) in terms.items():
            if settings not in crf_energies:
                crf_energies[settings] = [crf_energy(p, guide) for p in probs]
            mask = (pseudo[None] != 0) if unlabelled else None
            reg = [w_crf * crf + (w_vm * vm(p, guide, mask).item() if w_vm else 0.0)
                   for p, crf in zip(probs, crf_energies[settings])]
            for c in range(1, num_classes):
                d_partial, d_reg = partial[c] - partial[0], reg[c] - reg[0]
                out[trainer][c]["partial"].append(d_partial)
                out[trainer][c]["reg"].append(d_reg)
                out[trainer][c]["erase"].append(d_partial + d_reg < 0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the accuracy benchmark's work folder")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--base_id", type=int, default=820, help="the benchmark's base dataset id (default 820: "
                                                                  "ventricles; deep grey 860)")
    parser.add_argument("--plans", default="nnUNetPlans", help="the plans the datasets were preprocessed with")
    parser.add_argument("--erode", type=int, default=0, help="erode each class by this many voxels before scoring")
    parser.add_argument("--soften", type=float, default=0.1, help="label smoothing of the scored labellings")
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    parser.add_argument("trainers", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)  # many small kernels: one thread is fastest on a shared CPU
    preprocessed = args.work / "nnUNet_preprocessed"
    full = next(preprocessed.glob(f"Dataset{args.base_id + 2 * args.seed + 1:03d}_*"), None)
    clicks = next(preprocessed.glob(f"Dataset{args.base_id + 2 * args.seed:03d}_*"), None)
    if full is None or clicks is None:
        raise SystemExit(f"regulariser_erasure: no full-label and clicks datasets of seed {args.seed} (base id "
                         f"{args.base_id}) under {preprocessed}")
    plans = json.loads((full / f"{args.plans}.json").read_text())
    spacing = tuple(plans["configurations"]["3d_fullres"]["spacing"])
    labels = json.loads((clicks / "dataset.json").read_text())["labels"]
    names = {v: k for k, v in labels.items() if k not in ("background", "ignore")}
    data = plans["configurations"]["3d_fullres"]["data_identifier"]
    if not any((full / data).glob("*_seg.b2nd")):
        raise SystemExit(f"regulariser_erasure: no preprocessed images in {full / data}")
    result = measure(full / data, clicks / data, spacing, args.trainers, len(names) + 1, labels["ignore"],
                     args.soften, args.erode)
    images = len(next(iter(next(iter(result.values())).values()))["erase"])
    lines = [f"Erasing one class (merged into the background) from the full labels of the {images} training images "
             f"of {full.name}, each class eroded by {args.erode} voxels, scored with each trainer's stage-1 loss at full "
             f"ramp weight (soften {args.soften}); mean over images.", "",
             "| trainer | class | d partial loss | d regularisers | images where erasing lowers the loss |",
             "|---|---|---|---|---|"]
    for trainer, per_class in result.items():
        for c, values in per_class.items():
            lines.append(f"| {trainer} | {names[c]} | {np.mean(values['partial']):+.4f} | "
                         f"{np.mean(values['reg']):+.4f} | {int(np.sum(values['erase']))} / {images} |")
    lines += ["", f"Command: `python benchmarks/regulariser_erasure.py --work WORK --seed {args.seed} --base_id "
              f"{args.base_id} --plans {args.plans} --erode {args.erode} --soften {args.soften} "
              f"{' '.join(args.trainers)}`"]
    harness.print_table(lines, args.out, "Whether stage 1's loss would rather erase a structure")


if __name__ == "__main__":
    main()
