"""Accuracy benchmark: 7 clicks per object vs full labels, on the real-data atlas cohort.

    .venv/bin/python benchmarks/accuracy.py [--seeds 0 1 2] [--epochs 24 --iterations 50] [--device cpu|cuda]

Per seed: a cohort (``dataset_conversion.atlas_cohort``, that seed), converted twice: from the clicks
(``paseg_convert``: geodesic pseudo-labels, their quality against the full labels) and from the full labels
(the upper bound). Then, each on the same fixed schedule (benchmarks/trainers/budget.py), fold ``all``:

    nnUNetTrainer          full labels (upper bound)
    nnUNetTrainerPASeg_pCE clicks, partial loss only
    nnUNetTrainerPASeg     clicks, stage 1 of PA-Seg
    nnUNetTrainerPASegAux  clicks, stage 1 with the auxiliary architecture (input of stage 2)
    nnUNetTrainerSCM       clicks, stage 2 of PA-Seg, started from the two stage-1 models

predicted on the test images and scored against their full labels: Dice and HD95 (mm, spacing-aware) per
class. Writes ``benchmarks/results/accuracy.md`` (``--results``) (table, targets, command, machine), ``accuracy.png`` (bar
plot) and ``accuracy.json``. Resumable: finished conversions, trainings and predictions are skipped, an
interrupted training continues (``--c``); the report is rewritten after every training (``--report_only``
rewrites it from what exists).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dataset_conversion.atlas_cohort import TARGETS, build_cohort  # noqa: E402

BIN = Path(sys.executable).parent
BUDGET_TRAINERS = REPO / "benchmarks" / "trainers"


# (key, label in the report, budget trainer, dataset kind); trained in this order (SCM needs PASeg and PASegAux).
METHODS = [
    ("full", "nnUNetTrainer (full labels)", "nnUNetTrainer_budget", "full"),
    ("pce", "nnUNetTrainerPASeg_pCE (clicks)", "nnUNetTrainerPASeg_pCE_budget", "clicks"),
    ("paseg", "nnUNetTrainerPASeg (clicks)", "nnUNetTrainerPASeg_budget", "clicks"),
    ("aux", "nnUNetTrainerPASegAux (clicks)", "nnUNetTrainerPASegAux_budget", "clicks"),
    ("scm", "nnUNetTrainerSCM (clicks)", "nnUNetTrainerSCM_budget", "clicks"),
]


def log(text: str) -> None:
    print(f"[accuracy {time.strftime('%H:%M:%S')}] {text}", flush=True)


def run(env: dict, name: str, *args) -> None:
    args = [str(a) for a in args]
    log("$ " + " ".join([name, *args]))
    if subprocess.run([str(BIN / name), *args], env=env).returncode != 0:
        sys.exit(f"accuracy: {name} failed (command above); rerun to resume")


# ----------------------------------------------------------------------------------------------- metrics
def surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two boolean masks; NaN when both are empty."""
    total = int(pred.sum()) + int(truth.sum())
    return 2.0 * int((pred & truth).sum()) / total if total else math.nan


def hd95(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """95th-percentile symmetric Hausdorff distance in mm between the surfaces of two boolean masks.

    The larger of the two directed 95th percentiles (MONAI's convention). NaN when either mask is empty
    (0 when both are).
    """
    if not pred.any() or not truth.any():
        return 0.0 if not pred.any() and not truth.any() else math.nan
    sp, st = surface(pred), surface(truth)
    to_truth = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    to_pred = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    return float(max(np.percentile(to_truth, 95), np.percentile(to_pred, 95)))


def score_folder(pred_dir: Path, truth_dir: Path, num_classes: int) -> dict:
    """{case: {class: {"Dice", "HD95"}}} over the truth files (a missing prediction is an error)."""
    scores = {}
    for truth_file in sorted(truth_dir.glob("*.nii.gz")):
        case = truth_file.name[: -len(".nii.gz")]
        pred_file = pred_dir / truth_file.name
        if not pred_file.is_file():
            raise FileNotFoundError(f"no prediction {pred_file} for the test case {case}")
        truth_img = sitk.ReadImage(str(truth_file))
        truth = sitk.GetArrayFromImage(truth_img)
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(pred_file)))
        spacing = truth_img.GetSpacing()[::-1]
        scores[case] = {str(c): {"Dice": dice(pred == c, truth == c), "HD95": hd95(pred == c, truth == c, spacing)}
                        for c in range(1, num_classes + 1)}
    return scores


# ----------------------------------------------------------------------------------------------- datasets
def write_full_label_dataset(cohort: Path, raw_root: Path, dataset_id: int, name: str, classes: list[str]) -> Path:
    """The cohort's training images with their full labels as an nnU-Net raw dataset (test images in imagesTs,
    their labels in labelsTs), written atomically."""
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    final = raw_root / f"Dataset{dataset_id:03d}_{name}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=raw_root))
    try:
        for src, dst in (("train/images", "imagesTr"), ("train/labels", "labelsTr"), ("test/images", "imagesTs"),
                         ("test/labels", "labelsTs")):
            shutil.copytree(cohort / src, tmp / dst)
        num_training = len(list((tmp / "labelsTr").glob("*.nii.gz")))
        generate_dataset_json(str(tmp), {0: "T1"}, {"background": 0, **{c: i for i, c in enumerate(classes, 1)}},
                              num_training, ".nii.gz", dataset_name=final.name)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def preprocessed_complete(folder: Path, num_training: int) -> bool:
    data = folder / "nnUNetPlans_3d_fullres"
    return (folder / "nnUNetPlans.json").is_file() and data.is_dir() and len(list(data.glob("*.pkl"))) == num_training


def prepare_seed(seed: int, args, env: dict, ids: dict[str, int]) -> dict[str, Path]:
    """Cohort, both raw datasets, preprocessing and the small configuration of one seed; {kind: raw dataset}."""
    raw_root, pre_root = Path(env["nnUNet_raw"]), Path(env["nnUNet_preprocessed"])
    cohort = args.work / f"cohort_seed{seed}"
    if not (cohort / "cohort.json").is_file():
        log(f"seed {seed}: building the cohort in {cohort}")
        build_cohort(cohort, args.n_train, args.n_test, seed=seed, target=args.target, num_processes=args.np,
                     overwrite=True)
    classes = list(TARGETS[args.target])
    name = f"Atlas{args.target.capitalize()}Seed{seed}"
    raws = {"clicks": raw_root / f"Dataset{ids['clicks']:03d}_{name}Clicks",
            "full": raw_root / f"Dataset{ids['full']:03d}_{name}Full"}
    if not (raws["clicks"] / "dataset.json").is_file():
        run(env, "paseg_convert", "-i", cohort / "train/images", "-a", cohort / "train/clicks", "--gt",
            cohort / "train/labels", "--images_ts", cohort / "test/images", "--labels_ts", cohort / "test/labels",
            "-d", ids["clicks"], "-n", raws["clicks"].name.split("_", 1)[1], "--classes", *classes,
            "--channel_names", "T1", "-np", args.np)
    if not (raws["full"] / "dataset.json").is_file():
        write_full_label_dataset(cohort, raw_root, ids["full"], raws["full"].name.split("_", 1)[1], classes)
    for kind, raw in raws.items():
        if not preprocessed_complete(pre_root / raw.name, args.n_train):
            run(env, "nnUNetv2_plan_and_preprocess", "-d", ids[kind], "-c", "3d_fullres", "-np", min(2, args.np),
                "--verify_dataset_integrity")
        if args.configuration == "3d_small":
            run(env, "paseg_add_small_plans", "-d", ids[kind])
    return raws


def train_and_predict(seed: int, method: tuple, raw: Path, args, env: dict) -> Path:
    """Train (or resume, or skip) one method and predict the test images; returns the prediction folder."""
    key, _, trainer, _ = method
    fold_dir = Path(env["nnUNet_results"]) / raw.name / f"{trainer}__nnUNetPlans__{args.configuration}" / "fold_all"
    if not (fold_dir / "checkpoint_final.pth").is_file():
        resume = ["--c"] if (fold_dir / "checkpoint_latest.pth").is_file() else []
        t0 = time.time()
        run(env, "nnUNetv2_train", raw.name.split("_")[0][len("Dataset"):], args.configuration, "all", "-tr",
            trainer, "-device", args.device, *resume)
        (fold_dir / "benchmark_time.json").write_text(json.dumps({"train_seconds": time.time() - t0,
                                                                  "resumed": bool(resume)}))
    pred_dir = args.work / "predictions" / f"seed{seed}" / key
    expected = {p.name.replace("_0000.nii.gz", ".nii.gz") for p in (raw / "imagesTs").glob("*_0000.nii.gz")}
    if not pred_dir.is_dir() or not expected <= {p.name for p in pred_dir.glob("*.nii.gz")}:
        run(env, "nnUNetv2_predict", "-i", raw / "imagesTs", "-o", pred_dir, "-d", raw.name, "-c", args.configuration,
            "-f", "all", "-tr", trainer, "-device", args.device, "-npp", 1, "-nps", 1, "--continue_prediction")
    return pred_dir


# ----------------------------------------------------------------------------------------------- report
def aggregate(scores: dict, classes: list[str]) -> dict:
    """Per method and class: the per-seed means over test cases, and their mean and std over seeds."""
    out = {}
    for key, per_seed in scores.items():
        out[key] = {}
        for c, cname in enumerate(classes, start=1):
            entry = {}
            for metric in ("Dice", "HD95"):
                seed_means = [float(np.nanmean([case[str(c)][metric] for case in cases.values()]))
                              for cases in per_seed.values()]
                empty = sum(math.isnan(case[str(c)][metric]) for cases in per_seed.values() for case in cases.values())
                entry[metric] = {"mean": float(np.mean(seed_means)), "std": float(np.std(seed_means)),
                                 "per_seed": seed_means, "undefined_cases": empty}
            out[key][cname] = entry
    return out


def write_report(summary: dict, quality: dict, times: dict, classes: list[str], args) -> None:
    results = args.results
    results.mkdir(parents=True, exist_ok=True)
    labels = {m[0]: m[1] for m in METHODS}
    seeds = sorted({s for per_seed in summary.values() for s in per_seed.get("seeds", [])})
    lines = [f"# Accuracy: 7 clicks per object vs full labels ({args.target}, atlas cohort)", "",
             f"Test set: {args.n_test} cases per seed, scored against full labels; mean ± std over seeds of the "
             f"per-seed mean over test cases. Schedule per training: {args.epochs} epochs x {args.iterations} "
             f"iterations, configuration `{args.configuration}`, device `{args.device}`, fold `all` "
             f"({args.n_train} training cases).", ""]
    header = "| method | seeds | " + " | ".join(f"Dice {c} | HD95 {c} (mm)" for c in classes) + " | train min |"
    lines += [header, "|" + "---|" * (3 + 2 * len(classes))]
    for key, entry in summary.items():
        cells = [labels[key], str(len(entry["seeds"]))]
        for c in classes:
            d, h = entry["classes"][c]["Dice"], entry["classes"][c]["HD95"]
            cells += [f"{d['mean']:.3f} ± {d['std']:.3f}",
                      f"{h['mean']:.1f} ± {h['std']:.1f}" + (f" ({h['undefined_cases']} empty)" if h["undefined_cases"] else "")]
        minutes = [t / 60 for t in times.get(key, [])]
        cells.append(f"{np.mean(minutes):.1f}" if minutes else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    if quality:
        lines += ["", "Pseudo-labels of the training cases (paseg_convert defaults), mean over seeds: "
                  + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in quality.items()) + "."]
    mean_dice = {k: float(np.mean([e["classes"][c]["Dice"]["mean"] for c in classes])) for k, e in summary.items()}
    checks = []
    if {"paseg", "pce"} <= mean_dice.keys():
        gain = mean_dice["paseg"] - mean_dice["pce"]
        checks.append(f"PASeg - pCE = {gain:+.3f} Dice (target >= +0.05: {'met' if gain >= 0.05 else 'missed'})")
    if {"paseg", "full"} <= mean_dice.keys():
        ratio = mean_dice["paseg"] / mean_dice["full"]
        checks.append(f"PASeg / full = {ratio:.3f} (target >= 0.85: {'met' if ratio >= 0.85 else 'missed'})")
    if {"scm", "paseg"} <= mean_dice.keys():
        diff = mean_dice["scm"] - mean_dice["paseg"]
        checks.append(f"SCM - PASeg = {diff:+.3f} Dice (target >= 0: {'met' if diff >= 0 else 'missed'})")
    if checks:
        lines += ["", "Targets (mean Dice over classes): " + "; ".join(checks) + "."]
    lines += ["", f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`; seeds {seeds}; machine: "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
              + (f", {args.gpu_name}" if args.gpu_name else "") + f"; {time.strftime('%Y-%m-%d')}.", ""]
    (results / "accuracy.md").write_text("\n".join(lines))
    (results / "accuracy.json").write_text(json.dumps({"summary": summary, "pseudo_label_quality": quality,
                                                       "train_seconds": times}, indent=2))
    plot(summary, classes, labels, results / "accuracy.png")
    log(f"wrote {results / 'accuracy.md'}\n" + "\n".join(lines))


def plot(summary: dict, classes: list[str], labels: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(summary)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(classes)
    for ax, metric in zip(axes, ("Dice", "HD95")):
        for i, c in enumerate(classes):
            means = [summary[k]["classes"][c][metric]["mean"] for k in keys]
            stds = [summary[k]["classes"][c][metric]["std"] for k in keys]
            ax.bar(np.arange(len(keys)) + (i - (len(classes) - 1) / 2) * width, means, width, yerr=stds, capsize=3,
                   label=c)
        ax.set_xticks(np.arange(len(keys)), [labels[k].replace(" (", "\n(") for k in keys], fontsize=7, rotation=20, ha="right")
        ax.set_ylabel(metric + (" (mm)" if metric == "HD95" else ""))
        if metric == "Dice":
            ax.set_ylim(0, 1)
        if len(classes) > 1:
            ax.legend(fontsize=7)
    fig.suptitle("Test set, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def collect(args, env: dict, seeds: list[int], classes: list[str]) -> tuple[dict, dict, dict]:
    """From the work folder: scores of every finished prediction, pseudo-label quality and training times."""
    scores, quality, times = {}, {}, {}
    raw_root, results = Path(env["nnUNet_raw"]), Path(env["nnUNet_results"])
    for seed in seeds:
        ids = dataset_ids(args.base_id, seed)
        raws = {kind: next(raw_root.glob(f"Dataset{i:03d}_*"), None) for kind, i in ids.items()}
        if raws["clicks"] is not None and (raws["clicks"] / "pseudo_label_quality.json").is_file():
            report = json.loads((raws["clicks"] / "pseudo_label_quality.json").read_text())["summary"]
            for metric in ("fg_precision", "fg_recall", "bg_precision", "labelled_share"):
                quality.setdefault(metric, []).append(report[metric]["mean"])
        for key, _, trainer, kind in METHODS:
            pred_dir = args.work / "predictions" / f"seed{seed}" / key
            if raws[kind] is None or not pred_dir.is_dir():
                continue
            try:
                scores.setdefault(key, {})[seed] = score_folder(pred_dir, raws[kind] / "labelsTs", len(classes))
            except FileNotFoundError:
                continue  # prediction unfinished
            timing = results / raws[kind].name / f"{trainer}__nnUNetPlans__{args.configuration}" / "fold_all" \
                / "benchmark_time.json"
            if timing.is_file() and not json.loads(timing.read_text())["resumed"]:
                times.setdefault(key, []).append(json.loads(timing.read_text())["train_seconds"])
    scores = {k: v for k, v in scores.items() if v}
    aggregated = aggregate(scores, classes)
    summary = {k: {"seeds": sorted(scores[k]), "classes": aggregated[k]} for k in (m[0] for m in METHODS) if k in scores}
    return summary, quality, times


def dataset_ids(base: int, seed: int) -> dict[str, int]:
    return {"clicks": base + 2 * seed, "full": base + 2 * seed + 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="cohort seeds (default 0 1 2; about 1.5 h each on a 2-core CPU)")
    parser.add_argument("--work", type=Path, default=REPO / "benchmark_output", help="default: benchmark_output/")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results",
                        help="where the table, plot and JSON go (default: benchmarks/results/)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="ventricles")
    parser.add_argument("--n_train", type=int, default=24)
    parser.add_argument("--n_test", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=24)
    parser.add_argument("--iterations", type=int, default=50, help="iterations per epoch")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--configuration", help="default: 3d_small on cpu, 3d_fullres (nnU-Net's network) on cuda")
    parser.add_argument("--methods", nargs="+", choices=[m[0] for m in METHODS], default=[m[0] for m in METHODS],
                        help="subset to train (scm needs paseg and aux)")
    parser.add_argument("--base_id", type=int, default=820, help="dataset ids base + 2 seed (+1 for full labels)")
    parser.add_argument("-np", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--report_only", action="store_true", help="only rewrite the report from finished runs")
    args = parser.parse_args()
    import torch
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.gpu_name = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    args.configuration = args.configuration or ("3d_small" if args.device == "cpu" else "3d_fullres")
    if "scm" in args.methods and not {"paseg", "aux"} <= set(args.methods):
        parser.error("--methods scm needs paseg and aux (its stage-1 models)")
    args.work = args.work.resolve()
    env = dict(os.environ)
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        env[key] = str(args.work / key)  # its own folders: dataset ids cannot collide with a user's datasets
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    env["nnUNet_extTrainer"] = os.pathsep.join(filter(None, [str(BUDGET_TRAINERS), env.get("nnUNet_extTrainer")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("nnUNet_n_proc_DA", str(max(1, min(8, (os.cpu_count() or 2) // 2))))
    env.setdefault("PASEG_TORCH_THREADS", str(max(1, (os.cpu_count() or 2) - int(env["nnUNet_n_proc_DA"]))))
    env["PASEG_BUDGET_EPOCHS"], env["PASEG_BUDGET_ITERATIONS"] = str(args.epochs), str(args.iterations)
    classes = list(TARGETS[args.target])
    budget = {"target": args.target, "n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs,
              "iterations": args.iterations, "configuration": args.configuration}
    budget_file = args.work / "budget.json"
    if budget_file.is_file() and json.loads(budget_file.read_text()) != budget:
        parser.error(f"{args.work} holds runs of another setting ({budget_file.read_text().strip()}); finished "
                     f"runs would be mixed in: pass another --work")
    budget_file.write_text(json.dumps(budget))
    if not args.report_only:
        for seed in args.seeds:
            ids = dataset_ids(args.base_id, seed)
            raws = prepare_seed(seed, args, env, ids)
            for method in METHODS:
                if method[0] in args.methods:
                    log(f"seed {seed}: {method[1]}")
                    train_and_predict(seed, method, raws[method[3]], args, env)
                    write_report(*collect(args, env, args.seeds, classes), classes, args)
    write_report(*collect(args, env, args.seeds, classes), classes, args)


if __name__ == "__main__":
    main()
