"""Accuracy benchmark: 7 clicks per object vs full labels, on the real-data atlas cohort.

    .venv/bin/python benchmarks/accuracy.py [--target ventricles|deepgrey] [--seeds 0 1 2] [--jobs 2]
        [--methods full pce paseg aux scm] [--variants nnUNetTrainerPASeg_mmCRF ...]
        [--epochs 24 [48 96 ...] --iterations 50 --max_features 64] [--device cpu|cuda]

Per seed: a cohort (``benchmarks.atlas_cohort``, that seed), converted twice: from the clicks
(``paseg_convert``: pseudo-labels by its default method, ``extremes``, or ``--pseudo_labels``; their quality against
the full labels) and from the full labels
(the upper bound). Then, each on the same fixed schedule (``NAME_budget``, benchmarks/trainers/lab_trainers.py),
fold ``all``:

    full   nnUNetTrainer              full labels (upper bound)
    pce    nnUNetTrainerPASeg_pCE     clicks, partial loss only
    paseg  nnUNetTrainerPASeg         clicks, stage 1 of PA-Seg
    aux    nnUNetTrainerPASegAux_pCE  clicks, partial loss only on the auxiliary architecture (input of stage 2)
    scm    nnUNetTrainerSCM           clicks, stage 2 of PA-Seg, started from the two stage-1 models

and any ``--variants`` (trainer names of the package or the lab, trained on the clicks; an SCM variant after its stage-1
trainers), predicted on the test images and scored against their full labels: Dice, HD95 (mm, spacing-aware) and
pooled voxel precision / recall per class.

Writes to ``--results`` (default benchmarks/results/): ``accuracy.{md,json,png}``
(``accuracy[_TARGET][_PLANS][_eEPOCHS][_METHOD].*`` for a target other than the ventricles, plans other than
nnUNetPlans, a budget other than 24 epochs, pseudo-labels other than paseg_convert's default; see ``report_stem``): the main methods, mean ± std over seeds, the
issue's targets and whether every run found the foreground, and under nnUNetPlans a table per other plans on record;
``ablation[...].md``: every trainer, per seed (full-label runs count for every pseudo-label method); and
``runs.jsonl``: one line per finished training with the commit and day of that training (appended once, never
rewritten), so that runs set aside later stay on record.

Several ``--epochs``: each budget in its own ``WORK/e{EPOCHS}`` with its reports in ``RESULTS/budget/e{EPOCHS}``,
then the accuracy against the budget (``budget_curve.py``: ``RESULTS/budget/budget.{md,png}``).

Resumable: finished conversions, trainings and predictions are skipped, an interrupted training continues
(``--c``). The reports are written from the records alone (``runs.jsonl``: the latest run of each trainer and
seed at the setting; ``pseudo_labels.jsonl``: each seed's pseudo-label quality), after every run; ``--report_only``
rewrites them without a work folder.
``--jobs 2`` trains two models at a time (one torch thread and one augmentation worker each).
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
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import budget_curve, harness  # noqa: E402
from benchmarks.harness import REPO, RunFailed  # noqa: E402
from benchmarks.methods import FULL_LABEL_TRAINERS, MAIN_METHODS, PAPER_METHODS, Method, trained_as  # noqa: E402
from benchmarks.atlas_cohort import TARGETS, build_cohort  # noqa: E402
from point_tools.pseudo_labels import DEFAULT_METHOD, METHODS  # noqa: E402




def variant_method(trainer: str) -> Method:
    """A click-trained trainer of the package or the lab; an SCM variant needs its two stage-1 trainers."""
    from benchmarks.trainers.lab_trainers import lab_trainer
    from nnunetv2_paseg.trainers import nnUNetTrainerSCM

    cls = lab_trainer(trainer)
    if cls is None:
        raise SystemExit(f"accuracy: no trainer {trainer!r} in nnunetv2_paseg.trainers or benchmarks/trainers")
    needs = (cls.primary_stage1_trainer, cls.aux_stage1_trainer) if issubclass(cls, nnUNetTrainerSCM) else ()
    return Method(trainer, f"{trainer} (clicks)", "clicks", needs)


def log(text: str) -> None:
    harness.log("accuracy", text)


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
    """{case: {class: {"Dice", "HD95", "tp", "fp", "fn"}}} over the truth files (a missing prediction is an error)."""
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
        scores[case] = score_case(pred, truth, spacing, num_classes)
    return scores


def score_case(pred: np.ndarray, truth: np.ndarray, spacing: tuple[float, ...], num_classes: int) -> dict:
    """{class: {"Dice", "HD95", "tp", "fp", "fn"}} of one test case's label map against its truth."""
    out = {}
    for c in range(1, num_classes + 1):
        p, t = pred == c, truth == c
        out[str(c)] = {"Dice": dice(p, t), "HD95": hd95(p, t, spacing), "tp": int((p & t).sum()),
                       "fp": int((p & ~t).sum()), "fn": int((~p & t).sum())}
    return out


def summarise_run(scores: dict, classes: list[str]) -> dict:
    """Per class: mean Dice and HD95 over the test cases, pooled voxel precision and recall, and the number of
    test cases where the class was not predicted at all."""
    out = {}
    for c, name in enumerate(classes, start=1):
        rows = [case[str(c)] for case in scores.values()]
        tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp", "fp", "fn"))
        out[name] = {"Dice": float(np.nanmean([r["Dice"] for r in rows])),
                     "HD95": float(np.nanmean([r["HD95"] for r in rows])) if any(
                         not math.isnan(r["HD95"]) for r in rows) else math.nan,
                     "precision": tp / (tp + fp) if tp + fp else math.nan,
                     "recall": tp / (tp + fn) if tp + fn else math.nan,
                     "cases_not_predicted": sum(r["tp"] + r["fp"] == 0 for r in rows)}
    return out


def training_facts(fold_dir: Path) -> dict:
    """From a finished training's checkpoint: the first epoch whose pseudo-Dice was > 0 (None: never), the first
    epoch with a regulariser weight > 0 (None: never, or no regularisers) and the number of epochs."""
    import torch

    logging = torch.load(fold_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)["logging"]
    dice_curve = [float(np.nanmean(d)) if np.ndim(d) else float(d) for d in logging["mean_fg_dice"]]
    first_fg = next((e for e, d in enumerate(dice_curve) if d > 0), None)
    regularised = any(k.startswith("train_") and k not in ("train_losses", "train_partial") for k in logging)
    ramp = logging.get("ramp") if regularised else None
    ramp_start = next((e for e, w in enumerate(ramp) if w > 0), None) if ramp else None
    return {"first_fg_epoch": first_fg, "ramp_start_epoch": ramp_start, "epochs": len(dice_curve),
            "final_pseudo_dice": dice_curve[-1] if dice_curve else None}


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


def prepare_seed(seed: int, args, env: dict, ids: dict[str, int]) -> dict[str, Path]:
    """Cohort, both raw datasets, preprocessing and the small configuration of one seed; {kind: raw dataset}."""
    cohort = args.work / f"cohort_seed{seed}"
    if not (cohort / "cohort.json").is_file():
        log(f"seed {seed}: building the cohort in {cohort}")
        build_cohort(cohort, args.n_train, args.n_test, seed=seed, target=args.target, num_processes=args.np,
                     overwrite=True)
    classes = list(TARGETS[args.target])
    name = f"Atlas{args.target.capitalize()}Seed{seed}"
    raws = {"clicks": harness.convert_clicks(env, cohort, ids["clicks"], f"{name}Clicks", classes, args.np,
                                             method=args.pseudo_labels, prefix="accuracy"),
            "full": Path(env["nnUNet_raw"]) / f"Dataset{ids['full']:03d}_{name}Full"}
    if not (raws["full"] / "dataset.json").is_file():
        write_full_label_dataset(cohort, Path(env["nnUNet_raw"]), ids["full"], f"{name}Full", classes)
    for kind, raw in raws.items():
        harness.plan_and_preprocess(env, ids[kind], raw, args.np, args.configuration, args.max_features,
                                    prefix="accuracy", planner=args.planner)
    return raws


def fold_dir_of(env: dict, raw: Path, trainer: str, configuration: str, plans: str = harness.DEFAULT_PLANS) -> Path:
    return harness.fold_dir(env, raw.name, f"{trainer}_budget", configuration, plans)


def train_and_predict(seed: int, method: Method, raw: Path, args, env: dict) -> Path:
    """Train (or resume, or skip) one method and predict the test images; returns the prediction folder."""
    trainer = f"{method.trainer}_budget"
    logs = args.work / "logs"
    logs.mkdir(exist_ok=True)
    log_file = logs / f"seed{seed}_{method.trainer}.txt"
    fold_dir = fold_dir_of(env, raw, method.trainer, args.configuration, args.plans)
    if not (fold_dir / "checkpoint_final.pth").is_file():
        t0 = time.time()
        resumed = harness.train(env, raw.name, trainer, args.configuration, args.device, log_file, prefix="accuracy",
                                plans=args.plans)
        (fold_dir / "benchmark_time.json").write_text(json.dumps({"train_seconds": time.time() - t0,
                                                                  "resumed": resumed, "jobs": args.jobs,
                                                                  "commit": args.commit}))
    pred_dir = args.work / "predictions" / f"seed{seed}" / method.trainer
    harness.predict(env, raw / "imagesTs", pred_dir, raw.name, trainer, args.configuration, args.device, log_file,
                    prefix="accuracy", plans=args.plans)
    return pred_dir


# ----------------------------------------------------------------------------------------------- records
def git_commit() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def run_record(seed: int, method: Method, raw: Path, pred_dir: Path, args, env: dict, classes: list[str]) -> dict:
    """Everything known about one finished run (training facts, test scores), for runs.jsonl and the reports."""
    fold_dir = fold_dir_of(env, raw, method.trainer, args.configuration, args.plans)
    timing_file = fold_dir / "benchmark_time.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else {}
    per_class = summarise_run(score_folder(pred_dir, raw / "labelsTs", len(classes)), classes)
    finished = (fold_dir / "checkpoint_final.pth").stat().st_mtime
    return {"run": f"{fold_dir}@{int(finished)}",
            "target": args.target, "seed": seed, "trainer": method.trainer, "configuration": args.configuration,
            "max_features": args.max_features if args.configuration == "3d_small" else None,
            "epochs": args.epochs, "iterations": args.iterations, "device": args.device,
            "n_train": args.n_train, "n_test": args.n_test, "pseudo_labels": args.pseudo_labels, "plans": args.plans,
            "train_seconds": None if timing.get("resumed", True) else timing["train_seconds"],
            # The commit and the day of the training, not of this report (--report_only may come much later);
            # runs trained before the commit was stored say "unknown".
            "jobs": timing.get("jobs"), "commit": timing.get("commit", "unknown"),
            "date": time.strftime("%Y-%m-%d", time.localtime(finished)),
            **training_facts(fold_dir),
            "mean_dice": float(np.mean([v["Dice"] for v in per_class.values()])), "classes": per_class}


def append_record(record: dict, runs_file: Path) -> None:
    """Append ``record`` to the JSON-lines file unless a line of the same run (fold folder and finish time) is there."""
    runs_file.parent.mkdir(parents=True, exist_ok=True)
    if record["run"] not in {known["run"] for known in _read_jsonl(runs_file)}:
        with open(runs_file, "a") as out:
            out.write(json.dumps(record) + "\n")


def _read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] when there is none)."""
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.strip()]


DEFAULT_EPOCHS = 24  # x 50 iterations: the benchmark's budget, as the demo's
QUALITY_METRICS = ("fg_precision", "fg_recall", "bg_precision", "labelled_share")
# Runs recorded before these keys were stored had these settings.
_RECORD_DEFAULTS = {"n_train": 24, "n_test": 12, "pseudo_labels": "geodesic", "plans": harness.DEFAULT_PLANS}


def _matches(record: dict, wanted: dict) -> bool:
    if record.get("trainer") in FULL_LABEL_TRAINERS:  # trained on the full labels: the pseudo-labels do not matter
        wanted = {key: value for key, value in wanted.items() if key != "pseudo_labels"}
    return all(record.get(key, _RECORD_DEFAULTS.get(key)) == value for key, value in wanted.items())


def recorded_runs(runs_file: Path, args) -> dict[tuple[int, str], dict]:
    """{(seed, trainer): record}: the latest recorded run (by finish time) of each trainer on ``args.seeds`` at this
    setting (target, cohort size, budget, plans, configuration, width, device, pseudo-labels), whatever work folder
    it was trained in: the reports are written from the records alone."""
    wanted = {"target": args.target, "n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs,
              "iterations": args.iterations, "configuration": args.configuration,
              "max_features": args.max_features if args.configuration == "3d_small" else None,
              "device": args.device, "pseudo_labels": args.pseudo_labels, "plans": args.plans}
    latest: dict[tuple[int, str], dict] = {}
    for record in _read_jsonl(runs_file):
        key = (record["seed"], trained_as(record))
        if record["seed"] in args.seeds and _matches(record, wanted) and (
                key not in latest or _finished(record) > _finished(latest[key])):
            latest[key] = record
    return latest


def _finished(record: dict) -> int:
    return int(record["run"].rsplit("@", 1)[1])


def record_pseudo_labels(raws_per_seed: dict[int, dict[str, Path]], args, quality_file: Path) -> None:
    """Append each seed's pseudo-label quality (``paseg_convert``'s report on the training cases) to the JSON-lines
    ``quality_file`` unless a line for that seed and setting is there."""
    known = _read_jsonl(quality_file)
    for seed, raws in raws_per_seed.items():
        report_file = raws["clicks"] / "pseudo_label_quality.json"
        entry = {"target": args.target, "seed": seed, "n_train": args.n_train, "pseudo_labels": args.pseudo_labels}
        if not report_file.is_file() or any(_matches(k, entry) for k in known):
            continue
        summary = json.loads(report_file.read_text())["summary"]
        entry.update({m: summary[m]["mean"] for m in QUALITY_METRICS})
        quality_file.parent.mkdir(parents=True, exist_ok=True)
        with open(quality_file, "a") as out:
            out.write(json.dumps(entry) + "\n")


def recorded_pseudo_labels(quality_file: Path, args) -> dict[str, list[float]]:
    """{metric: [value per seed]} of the recorded pseudo-label quality of ``args.seeds`` at this setting."""
    wanted = {"target": args.target, "n_train": args.n_train, "pseudo_labels": args.pseudo_labels}
    per_seed = {e["seed"]: e for e in _read_jsonl(quality_file) if e["seed"] in args.seeds and _matches(e, wanted)}
    return {metric: [per_seed[seed][metric] for seed in sorted(per_seed)] for metric in QUALITY_METRICS} \
        if per_seed else {}


# ----------------------------------------------------------------------------------------------- report
def _mean_std(values: list[float]) -> dict:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return {"mean": float(np.mean(finite)) if finite else math.nan, "std": float(np.std(finite)) if finite else math.nan,
            "per_seed": values}


def summarise(records: dict[tuple[int, str], dict], trainers: list[str], classes: list[str]) -> dict:
    """Per trainer: seeds, and per class mean ± std over seeds of Dice, HD95, precision, recall; training minutes;
    whether every run found the foreground (pseudo-Dice > 0 in some epoch and a prediction in every test case)."""
    out = {}
    for trainer in trainers:
        runs = {seed: r for (seed, t), r in sorted(records.items()) if t == trainer}
        if not runs:
            continue
        out[trainer] = {
            "seeds": sorted(runs),
            "mean_dice": _mean_std([r["mean_dice"] for r in runs.values()]),
            "classes": {c: {m: _mean_std([r["classes"][c][m] for r in runs.values()])
                            for m in ("Dice", "HD95", "precision", "recall")} for c in classes},
            "train_minutes": _mean_std([r["train_seconds"] / 60 for r in runs.values() if r["train_seconds"]]),
            "found_foreground_every_run": all(r["first_fg_epoch"] is not None and
                                              all(v["cases_not_predicted"] == 0 for v in r["classes"].values())
                                              for r in runs.values()),
            "first_fg_epochs": [r["first_fg_epoch"] for r in runs.values()],
            "ramp_start_epochs": [r["ramp_start_epoch"] for r in runs.values()],
        }
    return out


def paired_difference(summary: dict, a: str, b: str) -> tuple[float, list[int]]:
    """Mean over the seeds that both trainers ran of trainer ``a``'s mean Dice minus ``b``'s, and those seeds: a
    method run on fewer seeds is compared on its own cohorts only."""
    dice_a, dice_b, common = _common_seeds(summary, a, b)
    return (float(np.mean([dice_a[s] - dice_b[s] for s in common])) if common else math.nan), common


def paired_ratio(summary: dict, a: str, b: str) -> tuple[float, list[int]]:
    """Trainer ``a``'s mean Dice over ``b``'s, both over the seeds that both ran, and those seeds."""
    dice_a, dice_b, common = _common_seeds(summary, a, b)
    return (float(np.mean([dice_a[s] for s in common]) / np.mean([dice_b[s] for s in common])) if common
            else math.nan), common


def _common_seeds(summary: dict, a: str, b: str) -> tuple[dict, dict, list[int]]:
    dice_a, dice_b = (dict(zip(summary[t]["seeds"], summary[t]["mean_dice"]["per_seed"])) for t in (a, b))
    return dice_a, dice_b, sorted(dice_a.keys() & dice_b.keys())


def targets(summary: dict, names: dict[str, str], second_target: bool) -> list[str]:
    """Issue 24's targets, met or missed, on the mean Dice over classes and seeds (differences paired by seed):
    ventricles: PASeg - pCE >= +0.06 with HD95 not worse, PASeg >= 0.85 x full, SCM >= 0.92 x full, PASeg's
    regularisers started in every run; a second target: PASeg - pCE >= +0.03; and every method found the
    foreground (every class) in every run."""
    dice = {key: summary[t]["mean_dice"]["mean"] for key, t in names.items() if t in summary}
    hd = {key: float(np.nanmean([summary[t]["classes"][c]["HD95"]["mean"] for c in summary[t]["classes"]]))
          for key, t in names.items() if t in summary}
    checks = []

    def check(text: str, ok: bool) -> None:
        checks.append(f"{text}: {'met' if ok else 'missed'}")

    if {"paseg", "pce"} <= dice.keys():
        gain, seeds = paired_difference(summary, names["paseg"], names["pce"])
        # Two models that never found the foreground tie at 0: that proves nothing.
        found = all(summary[names[k]]["found_foreground_every_run"] for k in ("paseg", "pce"))
        text = f"PASeg - pCE = {gain:+.3f} Dice over seeds {seeds}"
        if not found:
            text += ", not every run found the foreground"
        goal = 0.03 if second_target else 0.06
        check(f"{text} (target >= +{goal:.2f})", found and gain >= goal)
        if not second_target:
            check(f"HD95 PASeg {hd['paseg']:.1f} mm vs pCE {hd['pce']:.1f} mm (target: not worse)",
                  hd["paseg"] <= hd["pce"])
    for key, name, goal in (("paseg", "PASeg", 0.85), ("scm", "SCM", 0.92)):
        if not second_target and {key, "full"} <= dice.keys():
            ratio, seeds = paired_ratio(summary, names[key], names["full"])
            check(f"{name} / full = {ratio:.3f} over seeds {seeds} (target >= {goal})", ratio >= goal)
    if "paseg" in dice:
        ramps = summary[names["paseg"]]["ramp_start_epochs"]
        check(f"PASeg's regularisers started in every run (epochs {ramps})", None not in ramps)
    if dice:
        every = all(summary[t]["found_foreground_every_run"] for key, t in names.items() if t in summary)
        check("every method found the foreground in every run", every)
    return checks


def fmt(entry: dict, digits: int = 3) -> str:
    return "n/a" if math.isnan(entry["mean"]) else f"{entry['mean']:.{digits}f} ± {entry['std']:.{digits}f}"


def report_stem(args) -> str:
    """``accuracy``, with ``_TARGET`` for a target other than the ventricles, ``_PLANS`` for plans other than
    nnU-Net's default, ``_eEPOCHS`` for a budget other than the default and ``_METHOD`` for pseudo-labels other than
    ``paseg_convert``'s default, so that the reports of several settings can share one results folder (a report of
    one budget must not overwrite another's)."""
    stem = "accuracy" if args.target == "ventricles" else f"accuracy_{args.target}"
    if args.plans != harness.DEFAULT_PLANS:
        stem += f"_{args.plans}"
    if args.epochs != DEFAULT_EPOCHS:
        stem += f"_e{args.epochs}"
    return stem if args.pseudo_labels == DEFAULT_METHOD else f"{stem}_{args.pseudo_labels}"


def main_table(main_summary: dict, labels: dict[str, str], classes: list[str]) -> list[str]:
    """The markdown table of the main methods: seeds, and per class Dice, HD95, precision / recall; train minutes."""
    header = "| method | seeds | " + " | ".join(f"Dice {c} | HD95 {c} (mm) | precision / recall {c}"
                                                for c in classes) + " | train min |"
    lines = [header, "|" + "---|" * (3 + 3 * len(classes))]
    for trainer, entry in main_summary.items():
        cells = [labels[trainer], str(len(entry["seeds"]))]
        for c in classes:
            m = entry["classes"][c]
            cells += [fmt(m["Dice"]), fmt(m["HD95"], 1),
                      f"{m['precision']['mean']:.2f} / {m['recall']['mean']:.2f}"]
        cells.append(fmt(entry["train_minutes"], 1))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def key_ratios(main_summary: dict, names: dict[str, str]) -> str:
    """PASeg - pCE (paired by seed), and SCM / full and the paper's SCM / full, where both trainers of each ran."""
    parts = []
    if {names["paseg"], names["pce"]} <= main_summary.keys():
        gain, seeds = paired_difference(main_summary, names["paseg"], names["pce"])
        parts.append(f"PASeg - pCE {gain:+.3f} Dice (paired, seeds {seeds})")
    for key, name in (("scm", "SCM"), ("scm_paper", "the paper's SCM")):
        if key in names and {names[key], names["full"]} <= main_summary.keys():
            ratio, seeds = paired_ratio(main_summary, names[key], names["full"])
            parts.append(f"{name} / full {ratio:.3f} (seeds {seeds})")
    return "; ".join(parts)


def other_plans(args, classes: list[str], labels: dict[str, str], names: dict[str, str],
                main_summary: dict) -> list[str]:
    """For the report of nnU-Net's default plans: the main methods on every other plans (e.g. the residual-encoder
    presets, ``--planner``) recorded at this setting, each as its own table beside the plain one."""
    plans_found = sorted({r.get("plans", harness.DEFAULT_PLANS) for r in _read_jsonl(args.results / "runs.jsonl")}
                         - {harness.DEFAULT_PLANS})
    lines = []
    for plans in plans_found:
        records = recorded_runs(args.results / "runs.jsonl", argparse.Namespace(**{**vars(args), "plans": plans}))
        summary = summarise(records, list(labels), classes)
        if not summary:
            continue
        lines += ["", f"On `{plans}` (the same cohorts, budget and width):", "", *main_table(summary, labels, classes),
                  "", f"`{plans}`: {key_ratios(summary, names) or 'no pair yet'}; `{harness.DEFAULT_PLANS}`: "
                  f"{key_ratios(main_summary, names) or 'no pair yet'}."]
    return lines


def write_report(records: dict, quality: dict, classes: list[str], args) -> None:
    results = args.results
    results.mkdir(parents=True, exist_ok=True)
    stem = report_stem(args)
    main_names = {key: m.trainer for key, m in {**MAIN_METHODS, **PAPER_METHODS}.items()}
    labels = {m.trainer: m.label for m in [*MAIN_METHODS.values(), *PAPER_METHODS.values()]}
    all_trainers = list(dict.fromkeys(list(labels) + sorted({t for _, t in records})))
    summary = summarise(records, all_trainers, classes)
    main_summary = {t: s for t, s in summary.items() if t in labels}
    seeds = sorted({s for s, _ in records})
    width = f" (max_features {args.max_features})" if args.configuration == "3d_small" else ""
    setting = (f"{args.epochs} epochs x {args.iterations} iterations per training, plans `{args.plans}`, "
               f"configuration `{args.configuration}`{width}, device `{args.device}`, fold `all` ({args.n_train} "
               f"training cases, {args.n_test} test cases per seed)")
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores"
               + (f", {args.gpu_name}" if args.gpu_name else ""))
    lines = [f"# Accuracy: 7 clicks per object vs full labels ({args.target}, atlas cohort)", "",
             f"Scored on the test cases against full labels; mean ± std over seeds of each seed's mean over test cases "
             f"(precision / recall: voxels pooled over a seed's test cases). {setting}.", ""]
    lines += main_table(main_summary, labels, classes)
    if quality:
        lines += ["", f"Pseudo-labels of the training cases (paseg_convert --method {args.pseudo_labels}), mean over "
                  "seeds: " + ", ".join(f"{k} {np.mean(v):.3f}" for k, v in quality.items()) + "."]
    checks = targets(main_summary, main_names, second_target=args.target != "ventricles")
    if checks:
        lines += ["", "Targets (mean Dice over classes and seeds): " + "; ".join(checks) + "."]
    if args.plans == harness.DEFAULT_PLANS:
        lines += other_plans(args, classes, labels, main_names, main_summary)
    lines += ["", f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`; seeds {seeds}; report written "
              f"at commit {args.commit}; machine: {machine}; {time.strftime('%Y-%m-%d')}. Every run, with the commit "
              f"and day of its training: `runs.jsonl`; every trainer per seed: "
              f"`{stem.replace('accuracy', 'ablation')}.md`.", ""]
    (results / f"{stem}.md").write_text("\n".join(lines))
    (results / f"{stem}.json").write_text(json.dumps(
        {"setting": {k: getattr(args, k) for k in ("target", "n_train", "n_test", "epochs", "iterations", "plans",
                                                    "configuration", "max_features", "device", "pseudo_labels")},
         "commit": args.commit, "machine": machine, "targets": checks, "summary": summary,
         "pseudo_label_quality": quality,
         "runs": [records[k] for k in sorted(records)]}, indent=2))
    if main_summary:
        plot(main_summary, classes, labels, results / f"{stem}.png")
    write_ablation(summary, records, classes, results / f"{stem.replace('accuracy', 'ablation')}.md", setting, args)
    log(f"wrote {results / (stem + '.md')}\n" + "\n".join(lines))


def write_ablation(summary: dict, records: dict, classes: list[str], path: Path, setting: str, args) -> None:
    """Every trainer: mean ± std over seeds and each seed's Dice, with the paired difference to pCE."""
    seeds = sorted({s for s, _ in records})
    pce = "nnUNetTrainerPASeg_pCE"
    lines = [f"# Every trainer of the accuracy benchmark ({args.target})", "", f"{setting}. Dice: mean over classes "
             f"and test cases; Δ pCE: mean over seeds of the paired difference to nnUNetTrainerPASeg_pCE on the same "
             f"seed; precision / recall pooled; fg epoch: first epoch with pseudo-Dice > 0, ramp: first epoch with the "
             f"regularisers on.", "",
             "| trainer | seeds | Dice | Δ pCE | " + " | ".join(f"seed {s}" for s in seeds)
             + " | precision / recall | HD95 (mm) | fg epoch | ramp | train min |",
             "|" + "---|" * (9 + len(seeds))]
    for trainer, entry in summary.items():
        per_seed = {s: records[(s, trainer)]["mean_dice"] for s in entry["seeds"]}
        gain = paired_difference(summary, trainer, pce)[0] if pce in summary and trainer != pce else math.nan
        precision = np.mean([entry["classes"][c]["precision"]["mean"] for c in classes])
        recall = np.mean([entry["classes"][c]["recall"]["mean"] for c in classes])
        hd = np.nanmean([entry["classes"][c]["HD95"]["mean"] for c in classes])
        lines.append("| " + " | ".join([
            trainer, str(len(entry["seeds"])), fmt(entry["mean_dice"]),
            "" if math.isnan(gain) else f"{gain:+.3f}",
            *[f"{per_seed[s]:.3f}" if s in per_seed else "" for s in seeds],
            f"{precision:.2f} / {recall:.2f}", f"{hd:.1f}",
            ", ".join("never" if e is None else str(e) for e in entry["first_fg_epochs"]),
            ", ".join("-" if e is None else str(e) for e in entry["ramp_start_epochs"]),
            fmt(entry["train_minutes"], 1)]) + " |")
    path.write_text("\n".join(lines) + "\n")


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
        ax.set_xticks(np.arange(len(keys)), [labels[k].replace(" (", "\n(") for k in keys], fontsize=7, rotation=20,
                      ha="right")
        ax.set_ylabel(metric + (" (mm)" if metric == "HD95" else ""))
        if metric == "Dice":
            ax.set_ylim(0, 1)
        if len(classes) > 1:
            ax.legend(fontsize=7)
    fig.suptitle("Test set, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def default_base_id(target: str) -> int:
    """The benchmark's base dataset id of a target (dataset ids: base + 2 seed, + 1 for full labels)."""
    return 820 if target == "ventricles" else 860


def dataset_ids(base: int, seed: int) -> dict[str, int]:
    return {"clicks": base + 2 * seed, "full": base + 2 * seed + 1}


def collect(args, env: dict, raws_per_seed: dict, methods: dict[str, Method], classes: list[str]) -> dict:
    """Records of every finished run (prediction complete) in the work folder, also of trainers not asked for now."""
    records = {}
    predictions = args.work / "predictions"
    by_trainer = {m.trainer: m for m in [*MAIN_METHODS.values(), *methods.values()]}
    for seed, raws in raws_per_seed.items():
        for pred_dir in sorted((predictions / f"seed{seed}").glob("*")):
            method = by_trainer.get(pred_dir.name) or variant_method(pred_dir.name)
            raw = raws[method.kind]
            fold_dir = fold_dir_of(env, raw, method.trainer, args.configuration, args.plans)
            if not (fold_dir / "checkpoint_final.pth").is_file():
                continue
            try:
                records[(seed, method.trainer)] = run_record(seed, method, raw, pred_dir, args, env, classes)
            except FileNotFoundError:
                continue  # prediction unfinished
    return records


def schedule(seeds: list[int], methods: dict[str, Method], raws_per_seed: dict, args, env: dict, classes: list[str],
             runs_file: Path) -> None:
    """Train, predict and record every (seed, method), ``args.jobs`` at a time, each after the runs it needs."""
    pending = {(seed, m.trainer): m for seed in seeds for m in methods.values()}
    done: set[tuple[int, str]] = set()
    failed: set[tuple[int, str]] = set()
    report_lock = threading.Lock()

    def job(seed: int, method: Method) -> None:
        raws = raws_per_seed[seed]
        log(f"seed {seed}: {method.label}")
        pred_dir = train_and_predict(seed, method, raws[method.kind], args, env)
        record = run_record(seed, method, raws[method.kind], pred_dir, args, env, classes)
        with report_lock:
            append_record(record, runs_file)
            report(args, classes)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        running = {}
        while pending or running:
            for key, method in list(pending.items()):
                needs = {(key[0], need) for need in method.needs}
                if needs & failed:
                    del pending[key]
                elif needs <= done and len(running) < args.jobs:
                    running[pool.submit(job, key[0], method)] = key
                    del pending[key]
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                try:
                    future.result()
                    done.add(key)
                except RunFailed as error:
                    log(f"seed {key[0]}: {key[1]} failed: {error}")
                    failed.add(key)
    not_run = sorted(set((s, m.trainer) for s in seeds for m in methods.values()) - done - failed)
    if failed or not_run:
        sys.exit(f"accuracy: failed {sorted(failed)}, not run {not_run}: rerun to resume")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="cohort seeds (default 0 1 2; about 1.5 h each on a 2-core CPU)")
    parser.add_argument("--work", type=Path, help="work folder (default: benchmark_output/TARGET)")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results",
                        help="where the tables, plot, JSON and runs.jsonl go (default: benchmarks/results/)")
    parser.add_argument("--target", choices=sorted(TARGETS), default="ventricles")
    parser.add_argument("--n_train", type=int, default=24)
    parser.add_argument("--n_test", type=int, default=12)
    parser.add_argument("--epochs", type=int, nargs="+", default=[DEFAULT_EPOCHS],
                        help="epochs per training (default 24); several budgets (e.g. 24 48 96): each in its own "
                             "WORK/e{EPOCHS} and RESULTS/budget/e{EPOCHS}, then the curve (budget_curve.py) in "
                             "RESULTS/budget")
    parser.add_argument("--iterations", type=int, default=50, help="iterations per epoch")
    parser.add_argument("--max_features", type=int, default=harness.SMALL_MAX_FEATURES,
                        help=f"width of the widest stage of 3d_small (paseg_add_small_plans; default "
                             f"{harness.SMALL_MAX_FEATURES})")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="default: cuda when available")
    parser.add_argument("--configuration", help="default: 3d_small on cpu, 3d_fullres (nnU-Net's network) on cuda")
    parser.add_argument("--methods", nargs="*", choices=list(MAIN_METHODS), default=list(MAIN_METHODS),
                        help="main methods to train (scm also trains paseg and aux, its stage-1 models)")
    parser.add_argument("--variants", nargs="*", default=[], metavar="TRAINER",
                        help="more trainers of the package or the lab (benchmarks/trainers), trained on the clicks "
                             "(ablations)")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at a time (default 1)")
    parser.add_argument("--base_id", type=int, help="dataset ids: base + 2 seed (+1 for full labels); default 820 "
                        "for the ventricles, 860 for deepgrey")
    parser.add_argument("-np", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--planner", choices=sorted(harness.PLANS_OF_PLANNER), default="ExperimentPlanner",
                        help="nnU-Net's planner (default ExperimentPlanner: nnUNetPlans, the plain U-Net); e.g. "
                             "nnUNetPlannerResEncM: nnUNetResEncUNetMPlans. Another planner needs its own --work")
    parser.add_argument("--pseudo_labels", choices=tuple(METHODS), default=DEFAULT_METHOD,
                        help=f"paseg_convert --method of the click datasets (default {DEFAULT_METHOD}, "
                             "paseg_convert's; another method needs its own --work, and its reports are named "
                             "accuracy_METHOD.md)")
    parser.add_argument("--report_only", action="store_true",
                        help="only rewrite the reports, from the records in --results (runs.jsonl, "
                             "pseudo_labels.jsonl); no work folder needed")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be >= 1")
    if any(e < 1 for e in args.epochs):
        parser.error("--epochs must be >= 1")
    import torch
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.gpu_name = torch.cuda.get_device_name(0) if args.device == "cuda" else None
    args.configuration = args.configuration or ("3d_small" if args.device == "cpu" else "3d_fullres")
    args.base_id = args.base_id if args.base_id is not None else default_base_id(args.target)
    args.work = (args.work or REPO / "benchmark_output" / args.target).resolve()
    args.commit = git_commit()
    args.plans = harness.PLANS_OF_PLANNER[args.planner]
    if len(args.epochs) == 1:
        run_budget(argparse.Namespace(**{**vars(args), "epochs": args.epochs[0]}), parser)
        return
    curve = args.results / "budget"
    for epochs in args.epochs:
        run_budget(argparse.Namespace(**{**vars(args), "epochs": epochs, "work": args.work / f"e{epochs}",
                                         "results": curve / f"e{epochs}"}), parser)
    log(budget_curve.write_report(budget_curve.load_runs(curve), curve))


def run_budget(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Train, predict, record and report every asked-for run at one budget (``args.epochs``); with
    ``--report_only`` only the report, from the records."""
    classes = list(TARGETS[args.target])
    if args.report_only:
        report(args, classes)
        return
    methods = {key: MAIN_METHODS[key] for key in args.methods}
    for trainer in args.variants:
        methods[trainer] = variant_method(trainer)
    trainers = {m.trainer for m in methods.values()}
    for m in list(methods.values()):  # stage-1 models that an SCM method starts from
        for need in m.needs:
            if need not in trainers:
                key = next((k for k, main in MAIN_METHODS.items() if main.trainer == need), need)
                methods[key] = MAIN_METHODS.get(key) or variant_method(need)
                trainers.add(need)

    # its own nnU-Net folders: dataset ids cannot collide with a user's datasets
    env = harness.nnunet_environment(args.work, args.epochs, args.iterations, args.jobs)
    budget = {"target": args.target, "n_train": args.n_train, "n_test": args.n_test, "epochs": args.epochs,
              "iterations": args.iterations, "configuration": args.configuration,
              "max_features": args.max_features if args.configuration == "3d_small" else None}
    for key in ("pseudo_labels", "plans"):  # work folders of the defaults stay valid
        if getattr(args, key) != _RECORD_DEFAULTS[key]:
            budget[key] = getattr(args, key)
    budget_file = args.work / "budget.json"
    if budget_file.is_file() and json.loads(budget_file.read_text()) != budget:
        parser.error(f"{args.work} holds runs of another setting ({budget_file.read_text().strip()}); finished "
                     f"runs would be mixed in: pass another --work")
    args.work.mkdir(parents=True, exist_ok=True)
    budget_file.write_text(json.dumps(budget))
    runs_file = args.results / "runs.jsonl"
    raws_per_seed = {seed: prepare_seed(seed, args, env, dataset_ids(args.base_id, seed)) for seed in args.seeds}
    record_pseudo_labels(raws_per_seed, args, args.results / "pseudo_labels.jsonl")
    schedule(args.seeds, methods, raws_per_seed, args, env, classes, runs_file)
    # runs that finished before they were recorded (e.g. the benchmark was stopped during a later prediction)
    for record in collect(args, env, raws_per_seed, methods, classes).values():
        append_record(record, runs_file)
    report(args, classes)


def report(args: argparse.Namespace, classes: list[str]) -> None:
    """Rewrite the reports of ``args.seeds`` at this setting from the records in ``args.results`` alone."""
    write_report(recorded_runs(args.results / "runs.jsonl", args),
                 recorded_pseudo_labels(args.results / "pseudo_labels.jsonl", args), classes, args)

if __name__ == "__main__":
    main()
