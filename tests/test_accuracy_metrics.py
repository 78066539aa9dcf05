"""The benchmark's own metrics (benchmarks/accuracy.py): Dice and spacing-aware HD95 on shapes with a known answer,
and the provenance (commit, day) of a run's record."""
from __future__ import annotations

import json
import math
import os
import time
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from benchmarks import accuracy


def _box(shape, low, high) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[tuple(slice(a, b) for a, b in zip(low, high))] = True
    return mask


def test_dice() -> None:
    a = _box((10, 10, 10), (0, 0, 0), (4, 10, 10))
    b = _box((10, 10, 10), (2, 0, 0), (6, 10, 10))
    assert accuracy.dice(a, b) == pytest.approx(0.5)
    assert accuracy.dice(a, a) == 1.0
    assert math.isnan(accuracy.dice(np.zeros_like(a), np.zeros_like(a)))


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (3.0, 0.5, 0.5)])
def test_hd95_of_a_shifted_box_is_the_shift_in_mm(spacing) -> None:
    truth = _box((30, 30, 30), (8, 8, 8), (20, 20, 20))
    shifted = _box((30, 30, 30), (11, 8, 8), (23, 20, 20))  # 3 voxels along axis 0
    # Every face moves by 3 voxels along axis 0 at most; the shifted end faces are the farthest surfaces.
    assert accuracy.hd95(shifted, truth, spacing) == pytest.approx(3 * spacing[0])
    assert accuracy.hd95(truth, truth, spacing) == 0.0


def test_hd95_of_empty_masks() -> None:
    truth = _box((10, 10, 10), (2, 2, 2), (6, 6, 6))
    empty = np.zeros_like(truth)
    assert math.isnan(accuracy.hd95(empty, truth, (1, 1, 1)))
    assert accuracy.hd95(empty, empty, (1, 1, 1)) == 0.0


def test_precision_and_recall_pool_the_voxels_of_all_cases() -> None:
    truth = _box((10, 10, 10), (0, 0, 0), (4, 10, 10))  # 400 voxels
    half = _box((10, 10, 10), (0, 0, 0), (2, 10, 10))  # 200 of them
    leaking = _box((10, 10, 10), (0, 0, 0), (8, 10, 10))  # all 400 and 400 more
    scores = {"a": {"1": {"Dice": accuracy.dice(half, truth), "HD95": 1.0, "tp": 200, "fp": 0, "fn": 200}},
              "b": {"1": {"Dice": accuracy.dice(leaking, truth), "HD95": 3.0, "tp": 400, "fp": 400, "fn": 0}},
              "c": {"1": {"Dice": 0.0, "HD95": math.nan, "tp": 0, "fp": 0, "fn": 400}}}
    summary = accuracy.summarise_run(scores, ["thing"])["thing"]
    assert summary["precision"] == pytest.approx(600 / 1000) and summary["recall"] == pytest.approx(600 / 1200)
    assert summary["Dice"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert summary["HD95"] == pytest.approx(2.0) and summary["cases_not_predicted"] == 1


def test_every_run_is_recorded_once(tmp_path) -> None:
    runs = tmp_path / "results" / "runs.jsonl"
    first, second = {"run": "a@1", "mean_dice": 0.5}, {"run": "a@2", "mean_dice": 0.6}
    for record in (first, first, second, first):
        accuracy.append_record(record, runs)
    assert [line for line in runs.read_text().splitlines()] == ['{"run": "a@1", "mean_dice": 0.5}',
                                                                 '{"run": "a@2", "mean_dice": 0.6}']


def test_targets_are_judged_on_the_mean_over_seeds() -> None:
    def entry(dice: float, hd: float, found: bool = True, ramps: tuple = (3, 4)) -> dict:
        return {"seeds": [0, 1], "mean_dice": {"mean": dice, "per_seed": [dice - 0.01, dice + 0.01]},
                "classes": {"c": {"HD95": {"mean": hd}}}, "found_foreground_every_run": found,
                "ramp_start_epochs": list(ramps)}

    names = {"full": "F", "pce": "P", "paseg": "S", "scm": "M"}
    summary = {"F": entry(0.88, 2.0), "P": entry(0.69, 9.0), "S": entry(0.76, 8.0), "M": entry(0.82, 7.0)}
    checks = accuracy.targets(summary, names, second_target=False)
    assert all(check.endswith(": met") for check in checks) and len(checks) == 6
    # PASeg - pCE, HD95, PASeg / full, SCM / full (0.82 / 0.88 = 0.932), regularisers, foreground
    summary["S"] = entry(0.72, 10.0, found=False, ramps=(3, None))
    assert [c.rsplit(": ", 1)[1] for c in accuracy.targets(summary, names, second_target=False)] == \
        ["missed", "missed", "missed", "met", "missed", "missed"]
    assert accuracy.targets(summary, names, second_target=True)[0].endswith(
        ", not every run found the foreground (target >= +0.03): missed")  # 0.72 >= 0.69, but S never found it
    summary["S"] = entry(0.72, 10.0)
    assert accuracy.targets(summary, names, second_target=True)[0].endswith(": met")
    summary["S"] = entry(0.71, 10.0)
    assert accuracy.targets(summary, names, second_target=True)[0].endswith("(target >= +0.03): missed")


def test_differences_are_paired_by_seed() -> None:
    """SCM on seeds 0 and 1 only is compared with PASeg on those seeds, not with PASeg's mean over three."""
    summary = {"S": {"seeds": [0, 1, 2], "mean_dice": {"per_seed": [0.75, 0.76, 0.60]}},
               "M": {"seeds": [0, 1], "mean_dice": {"per_seed": [0.74, 0.75]}}}
    diff, seeds = accuracy.paired_difference(summary, "M", "S")
    assert seeds == [0, 1] and diff == pytest.approx(-0.01)
    ratio, seeds = accuracy.paired_ratio(summary, "M", "S")  # SCM / full and PASeg / full: the same rule
    assert seeds == [0, 1] and ratio == pytest.approx(0.745 / 0.755)


@pytest.mark.parametrize("stored", [{"commit": "abc1234"}, {}])
def test_a_run_record_keeps_the_commit_and_day_of_its_training(tmp_path, stored) -> None:
    """``--report_only`` at a later commit must not relabel older runs in runs.jsonl with its own commit or day."""
    env = {"nnUNet_results": str(tmp_path / "results")}
    raw = tmp_path / "raw" / "Dataset999_Toy"
    fold = accuracy.fold_dir_of(env, raw, "nnUNetTrainerPASeg", "3d_small")
    fold.mkdir(parents=True)
    torch.save({"logging": {"mean_fg_dice": [0.0, 0.6]}}, fold / "checkpoint_final.pth")
    trained = time.mktime((2026, 11, 3, 12, 0, 0, 0, 0, -1))
    os.utime(fold / "checkpoint_final.pth", (trained, trained))
    (fold / "benchmark_time.json").write_text(json.dumps({"train_seconds": 60.0, "resumed": False, "jobs": 2,
                                                          **stored}))
    label = _box((6, 6, 6), (1, 1, 1), (4, 4, 4)).astype(np.uint8)
    for folder in (raw / "labelsTs", tmp_path / "pred"):
        folder.mkdir(parents=True)
        sitk.WriteImage(sitk.GetImageFromArray(label), str(folder / "case0.nii.gz"))
    args = SimpleNamespace(target="ventricles", configuration="3d_small", max_features=64, epochs=2, iterations=5,
                           device="cpu", n_train=24, n_test=12, pseudo_labels="geodesic", plans="nnUNetPlans",
                           commit="fff0000+changes")
    method = accuracy.Method("nnUNetTrainerPASeg", "PASeg", "clicks")

    record = accuracy.run_record(0, method, raw, tmp_path / "pred", args, env, ["structure"])

    assert record["commit"] == stored.get("commit", "unknown")
    assert record["date"] == "2026-11-03"
    assert record["mean_dice"] == 1.0 and record["first_fg_epoch"] == 1


def _record(seed: int, trainer: str, finished: int, dice_value: float, **setting) -> dict:
    per_class = {"structure": {"Dice": dice_value, "HD95": 2.0, "precision": 0.9, "recall": 0.8,
                               "cases_not_predicted": 0}}
    return {"run": f"/w/{trainer}/fold_all@{finished}", "target": "ventricles", "seed": seed, "trainer": trainer,
            "configuration": "3d_small", "max_features": 64, "epochs": 24, "iterations": 50, "device": "cpu",
            "train_seconds": 600.0, "jobs": 1, "commit": "abc1234", "date": "2026-12-01", "first_fg_epoch": 0,
            "ramp_start_epoch": None, "final_pseudo_dice": 0.9, "mean_dice": dice_value, "classes": per_class,
            **setting}


def _report_args(results, **overrides) -> SimpleNamespace:
    return SimpleNamespace(**{"target": "ventricles", "n_train": 24, "n_test": 12, "epochs": 24, "iterations": 50,
                              "configuration": "3d_small", "max_features": 64, "device": "cpu",
                              "pseudo_labels": "geodesic", "plans": "nnUNetPlans", "seeds": [0, 1], "results": results,
                              "commit": "fff0000",
                              "gpu_name": None, **overrides})


def test_the_reports_come_from_the_latest_record_of_each_run_at_the_setting(tmp_path) -> None:
    """--report_only needs no work folder: per seed and trainer the latest record of the asked setting; records
    written before ``n_train`` and ``pseudo_labels`` were stored count as the defaults (24 cases, geodesic)."""
    records = [_record(0, "nnUNetTrainerPASeg_pCE", 100, 0.50),
               _record(0, "nnUNetTrainerPASeg_pCE", 200, 0.60, n_train=24, pseudo_labels="geodesic"),
               _record(0, "nnUNetTrainerPASeg_pCE", 300, 0.70, epochs=48),
               _record(0, "nnUNetTrainerPASeg_pCE", 400, 0.80, pseudo_labels="refined"),
               _record(1, "nnUNetTrainerPASeg", 150, 0.75),
               _record(2, "nnUNetTrainerPASeg", 150, 0.90)]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    args = _report_args(tmp_path)

    runs = accuracy.recorded_runs(tmp_path / "runs.jsonl", args)
    assert {key: r["mean_dice"] for key, r in runs.items()} == {(0, "nnUNetTrainerPASeg_pCE"): 0.60,
                                                                (1, "nnUNetTrainerPASeg"): 0.75}
    refined = accuracy.recorded_runs(tmp_path / "runs.jsonl", _report_args(tmp_path, pseudo_labels="refined"))
    assert [r["mean_dice"] for r in refined.values()] == [0.80]

    (tmp_path / "pseudo_labels.jsonl").write_text("".join(json.dumps(
        {"target": "ventricles", "seed": s, "n_train": 24, "pseudo_labels": "geodesic", "fg_precision": 0.98,
         "fg_recall": r, "bg_precision": 1.0, "labelled_share": 0.6}) + "\n" for s, r in ((0, 0.2), (1, 0.3), (2, 0.9))))
    accuracy.report(args, ["structure"])
    assert accuracy.DEFAULT_METHOD != "geodesic"  # geodesic reports are named for their pseudo-labels
    table = (tmp_path / "accuracy_geodesic.md").read_text()
    assert "| nnUNetTrainerPASeg_pCE (clicks) | 1 | 0.600 ± 0.000 |" in table
    assert "| nnUNetTrainerPASeg (clicks) | 1 | 0.750 ± 0.000 |" in table
    assert "fg_recall 0.250" in table  # seeds 0 and 1 only
    assert "0.900" not in table  # seed 2 was not asked for
    # no seed that both ran: no paired difference to pCE
    ablation = (tmp_path / "ablation_geodesic.md").read_text()
    assert "| nnUNetTrainerPASeg | 1 | 0.750 ± 0.000 |  |  | 0.750 |" in ablation
    assert not (tmp_path / "accuracy.md").exists()


def test_a_run_from_before_a_default_changed_is_reported_under_the_configuration_it_trained(tmp_path) -> None:
    """nnUNetTrainerSCM's defaults changed at a commit (``DEFAULTS_CHANGED``): its earlier runs are the paper's
    configuration (nnUNetTrainerSCM_crossKD) in the reports, its later ones SCM's; runs.jsonl stays as written."""
    import subprocess

    from benchmarks.methods import DEFAULTS_CHANGED, REPO, trained_as

    change, earlier = DEFAULTS_CHANGED["nnUNetTrainerSCM"]
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    if subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{change}^{{commit}}"]).returncode != 0:
        pytest.skip(f"a clone without commit {change}: every record is taken as named")
    records = [_record(0, "nnUNetTrainerSCM", 100, 0.80, commit="unknown"),
               _record(0, "nnUNetTrainerSCM", 200, 0.83, commit=f"{head}+changes"),
               _record(1, "nnUNetTrainerSCM", 100, 0.81, commit="abc1234")]  # not a commit of this repository
    assert [trained_as(r) for r in records] == [earlier, "nnUNetTrainerSCM", "nnUNetTrainerSCM"]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    runs = accuracy.recorded_runs(tmp_path / "runs.jsonl", _report_args(tmp_path, seeds=[0, 1]))
    assert {key: r["mean_dice"] for key, r in runs.items()} == {(0, earlier): 0.80, (0, "nnUNetTrainerSCM"): 0.83,
                                                                (1, "nnUNetTrainerSCM"): 0.81}


def test_a_full_label_run_counts_for_every_pseudo_label_method(tmp_path) -> None:
    """The full-label model never sees the pseudo-labels: its runs belong in the reports of every method (on the same
    seed and budget), so that a new pseudo-label method is compared with full labels without retraining them."""
    records = [_record(0, "nnUNetTrainer", 100, 0.90),
               _record(0, "nnUNetTrainerPASeg", 200, 0.70),
               _record(0, "nnUNetTrainerPASeg", 300, 0.80, pseudo_labels="extremes"),
               _record(0, "nnUNetTrainer", 400, 0.95, epochs=48, pseudo_labels="extremes")]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    for method, paseg in (("geodesic", 0.70), ("extremes", 0.80)):
        runs = accuracy.recorded_runs(tmp_path / "runs.jsonl", _report_args(tmp_path, pseudo_labels=method))
        assert {t: r["mean_dice"] for (_, t), r in runs.items()} == {"nnUNetTrainer": 0.90,
                                                                     "nnUNetTrainerPASeg": paseg}


def test_the_report_of_the_plain_plans_shows_the_other_plans_beside_it(tmp_path) -> None:
    """Runs on a residual-encoder preset (``--planner``) get their own table, with the paired PASeg - pCE and SCM /
    full on both plans, in the report of nnU-Net's default plans; their own report does not overwrite it."""
    resenc = {"plans": "nnUNetResEncUNetMPlans"}
    records = [_record(0, "nnUNetTrainer", 100, 0.90), _record(0, "nnUNetTrainerPASeg_pCE", 100, 0.70),
               _record(0, "nnUNetTrainerPASeg", 100, 0.76), _record(0, "nnUNetTrainerSCM", 100, 0.81),
               _record(0, "nnUNetTrainerPASeg_pCE", 200, 0.72, **resenc),
               _record(0, "nnUNetTrainerPASeg", 200, 0.80, **resenc)]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    accuracy.report(_report_args(tmp_path, seeds=[0]), ["structure"])
    table = (tmp_path / "accuracy_geodesic.md").read_text()
    assert "On `nnUNetResEncUNetMPlans` (the same cohorts, budget and width):" in table
    assert "| nnUNetTrainerPASeg (clicks) | 1 | 0.800 ± 0.000 |" in table
    assert ("`nnUNetResEncUNetMPlans`: PASeg - pCE +0.080 Dice (paired, seeds [0]); `nnUNetPlans`: PASeg - pCE +0.060 "
            "Dice (paired, seeds [0]); SCM / full 0.900 (seeds [0]).") in table

    accuracy.report(_report_args(tmp_path, seeds=[0], **resenc), ["structure"])
    own = (tmp_path / "accuracy_nnUNetResEncUNetMPlans_geodesic.md").read_text()
    assert "| nnUNetTrainerPASeg (clicks) | 1 | 0.800 ± 0.000 |" in own and "0.760" not in own


def test_reports_of_two_budgets_share_a_results_folder(tmp_path) -> None:
    """A budget other than the default is named in the report's files (``_e48``), so reporting it leaves the
    default budget's report (and any other budget's) as it was."""
    records = [_record(0, "nnUNetTrainerPASeg", 100, 0.70), _record(0, "nnUNetTrainerPASeg", 200, 0.80, epochs=48)]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    accuracy.report(_report_args(tmp_path, seeds=[0]), ["structure"])
    accuracy.report(_report_args(tmp_path, seeds=[0], epochs=48), ["structure"])
    default, longer = ((tmp_path / f"accuracy{e}_geodesic.md").read_text() for e in ("", "_e48"))
    assert "| nnUNetTrainerPASeg (clicks) | 1 | 0.700 ± 0.000 |" in default and "0.800" not in default
    assert "| nnUNetTrainerPASeg (clicks) | 1 | 0.800 ± 0.000 |" in longer and "0.700" not in longer
    assert "48 epochs x 50 iterations" in (tmp_path / "ablation_e48_geodesic.md").read_text()
