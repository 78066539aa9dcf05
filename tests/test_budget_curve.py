"""The budget curve's table: one series per trainer and pseudo-label method (full labels: one), differences paired within
a method."""
from __future__ import annotations

import json

from benchmarks import budget_curve


def _run(seed: int, trainer: str, epochs: int, dice: float, finished: int, **extra) -> dict:
    return {"run": f"/w/{trainer}/{seed}@{finished}", "seed": seed, "trainer": trainer, "epochs": epochs,
            "iterations": 50, "classes": {"c": {"Dice": dice, "precision": 0.9, "recall": 0.7, "HD95": 3.0}},
            **extra}


def test_each_pseudo_label_method_is_its_own_series(tmp_path) -> None:
    (tmp_path / "e24").mkdir()
    (tmp_path / "e48").mkdir()
    runs = {"e24": [_run(10, "nnUNetTrainerPASeg_pCE", 24, 0.70, 1), _run(10, "nnUNetTrainerPASeg", 24, 0.75, 2),
                    _run(10, "nnUNetTrainerPASeg", 24, 0.74, 3)],  # the later run of a seed wins
            "e48": [_run(10, "nnUNetTrainerPASeg_pCE", 48, 0.68, 4), _run(10, "nnUNetTrainerPASeg", 48, 0.77, 5)]}
    for folder, records in runs.items():
        (tmp_path / folder / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    also = tmp_path / "validation_runs.jsonl"
    also.write_text("".join(json.dumps(_run(10, t, 24, d, 6, pseudo_labels="extremes")) + "\n"
                            for t, d in (("nnUNetTrainerPASeg_pCE", 0.74), ("nnUNetTrainerPASeg", 0.80),
                                         ("nnUNetTrainer", 0.90))))
    with (tmp_path / "e48" / "runs.jsonl").open("a") as runs_file:
        runs_file.write(json.dumps(_run(11, "nnUNetTrainer", 48, 0.92, 7)) + "\n")

    report = budget_curve.write_report(budget_curve.load_runs(tmp_path, [also]), tmp_path)

    assert "| PASeg (stage 1), geodesic | 1200 | 10 | 0.740 ± 0.000 |" in report
    assert "| PASeg (stage 1), extremes | 1200 | 10 | 0.800 ± 0.000 |" in report
    assert ("| PASeg (stage 1), geodesic - pCE (partial loss), geodesic | +0.040 (seeds 10) | +0.090 (seeds 10) "
            "| +0.050 |") in report
    assert "| PASeg (stage 1), extremes - pCE (partial loss), extremes | +0.060 (seeds 10) |  |  |" in report
    assert "| full labels | 1200 | 10 | 0.900 ± 0.000 |" in report  # one series, whatever the pseudo-labels beside it
    assert "| full labels | 2400 | 11 | 0.920 ± 0.000 |" in report
    assert (tmp_path / "budget.png").is_file()


def test_another_targets_runs_stay_off_the_curve(tmp_path) -> None:
    (tmp_path / "e24").mkdir()
    records = [_run(10, "nnUNetTrainerPASeg_pCE", 24, 0.70, 1), _run(10, "nnUNetTrainerPASeg_pCE", 24, 0.0, 2,
                                                                     target="deepgrey")]
    (tmp_path / "e24" / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    assert [r["classes"]["c"]["Dice"] for r in budget_curve.load_runs(tmp_path)] == [0.70]
    assert [r["classes"]["c"]["Dice"] for r in budget_curve.load_runs(tmp_path, target="deepgrey")] == [0.0]
