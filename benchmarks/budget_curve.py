"""How the accuracy of each method grows with the training budget: the accuracy benchmark's runs at several budgets
(``accuracy.py --epochs 24 48 96``, one ``e{EPOCHS}/`` folder of results per budget), as one table and one plot.

    .venv/bin/python benchmarks/budget_curve.py [--results benchmarks/results/budget] [--also RUNS.jsonl ...]
        [--target ventricles]

Reads every ``--target`` run of the ``e*/runs.jsonl`` under ``--results`` (and the records of ``--also``, e.g.
validation runs at one of the budgets) and writes ``budget.md`` and ``budget.png`` there: per trainer, pseudo-label
method (``paseg_convert --method``; records without one are ``geodesic``; full-label runs are one series
whatever the click datasets beside them) and budget (iterations = epochs x iterations per epoch) the
mean ± std over seeds of Dice, precision, recall and HD95 (each a mean over classes), the paired differences PASeg -
pCE and SCM - PASeg on the seeds both ran with the same pseudo-labels, and the slope of PASeg - pCE per doubling of
the budget (least squares on log2 of the iterations).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.methods import FULL_LABEL_TRAINERS, REPO, trained_as  # noqa: E402

LABELS = {"nnUNetTrainer": "full labels", "nnUNetTrainerPASeg_pCE": "pCE (partial loss)",
          "nnUNetTrainerPASeg": "PASeg (stage 1)", "nnUNetTrainerPASegAux": "PASegAux (stage 1, aux.)",
          "nnUNetTrainerPASegAux_pCE": "PASegAux_pCE (stage 1, aux.)",
          "nnUNetTrainerSCM_crossKD": "SCM_crossKD (the paper's stage 2)", "nnUNetTrainerSCM": "SCM (stage 2)"}
FULL_LABELS = "full"  # the series of full-label trainers: the clicks' pseudo-labels do not enter them
PAIRS = (("nnUNetTrainerPASeg", "nnUNetTrainerPASeg_pCE"), ("nnUNetTrainerSCM", "nnUNetTrainerPASeg"),
         ("nnUNetTrainerSCM_crossKD", "nnUNetTrainerPASeg"))


def load_runs(results: Path, also: Sequence[Path] = (), target: str = "ventricles") -> list[dict]:
    """Every recorded run of ``target`` under ``results/e*/runs.jsonl`` and in the ``also`` files, once each (the
    ``run`` key: fold folder and finish time). Records without a target are the ventricles' (the benchmark's first
    target); a validation folder given in ``also`` may hold another target's runs, which belong to another curve."""
    runs = {}
    for runs_file in [*sorted(results.glob("e*/runs.jsonl")), *also]:
        for line in runs_file.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                if record.get("target", "ventricles") == target:
                    runs[record["run"]] = record
    return list(runs.values())


def metrics(record: dict) -> dict[str, float]:
    """Dice, precision, recall and HD95 of one run, each the mean over its classes."""
    classes = record["classes"].values()
    return {m: float(np.nanmean([c[m] for c in classes])) for m in ("Dice", "precision", "recall", "HD95")}


Series = tuple[str, str]  # (trainer, pseudo-label method)


def by_budget(runs: list[dict]) -> dict[Series, dict[int, dict[int, dict[str, float]]]]:
    """{(trainer, pseudo-labels): {iterations: {seed: metrics}}}; a later record of the same series, budget and seed
    wins."""
    table: dict[Series, dict[int, dict[int, dict[str, float]]]] = {}
    for record in sorted(runs, key=lambda r: r["run"].rsplit("@", 1)[-1]):
        iterations = record["epochs"] * record["iterations"]
        series = (trained_as(record), FULL_LABELS if record["trainer"] in FULL_LABEL_TRAINERS
                  else record.get("pseudo_labels", "geodesic"))
        table.setdefault(series, {}).setdefault(iterations, {})[record["seed"]] = metrics(record)
    return table


def label(series: Series) -> str:
    trainer, method = series
    return LABELS.get(trainer, trainer) if method == FULL_LABELS else f"{LABELS.get(trainer, trainer)}, {method}"


def paired(table: dict, a: Series, b: Series, iterations: int) -> tuple[float, list[int]]:
    """Mean over the seeds that both ran of a's Dice minus b's at one budget, and those seeds."""
    runs_a, runs_b = table.get(a, {}).get(iterations, {}), table.get(b, {}).get(iterations, {})
    seeds = sorted(runs_a.keys() & runs_b.keys())
    if not seeds:
        return math.nan, []
    return float(np.mean([runs_a[s]["Dice"] - runs_b[s]["Dice"] for s in seeds])), seeds


def slope_per_doubling(table: dict, a: Series, b: Series) -> float:
    """Least-squares slope of the paired a - b Dice against log2(iterations); NaN with fewer than 2 budgets."""
    points = [(math.log2(it), paired(table, a, b, it)[0]) for it in sorted(table.get(a, {}))]
    points = [(x, y) for x, y in points if not math.isnan(y)]
    if len(points) < 2:
        return math.nan
    x, y = np.array(points).T
    return float(np.polyfit(x, y, 1)[0])


def _mean_std(values: list[float], digits: int = 3) -> str:
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def write_report(runs: list[dict], results: Path) -> str:
    table = by_budget(runs)
    order = list(LABELS)
    trainers = sorted(table, key=lambda k: (k[1], order.index(k[0]) if k[0] in order else len(order), k[0]))
    targets = sorted({record.get("target", "ventricles") for record in runs})
    lines = [f"# Accuracy against the training budget ({', '.join(targets)})", "",
             "The accuracy benchmark (`benchmarks/accuracy.py`) at several budgets; iterations = epochs x iterations "
             "per epoch. Mean ± std over seeds (each a mean over classes and test cases); precision / recall pooled "
             "per seed. Every run: `e*/runs.jsonl` (with its commit).", "",
             "| method | iterations | seeds | Dice | precision / recall | HD95 (mm) |", "|---|---|---|---|---|---|"]
    for trainer in trainers:
        for iterations, per_seed in sorted(table[trainer].items()):
            values = list(per_seed.values())
            lines.append(f"| {label(trainer)} | {iterations} | {', '.join(map(str, sorted(per_seed)))} "
                         f"| {_mean_std([v['Dice'] for v in values])} | {np.mean([v['precision'] for v in values]):.2f}"
                         f" / {np.mean([v['recall'] for v in values]):.2f} | "
                         f"{_mean_std([v['HD95'] for v in values], 1)} |")
    lines += ["", "| paired difference | " + " | ".join(f"{it} it." for it in sorted({i for t in table.values()
                                                                                       for i in t})) +
              " | per doubling |"]
    budgets = sorted({i for t in table.values() for i in t})
    lines.append("|---|" + "---|" * (len(budgets) + 1))
    methods = sorted({method for _, method in table})
    for (a, b), method in ((pair, method) for method in methods for pair in PAIRS):
        a, b = (a, method), (b, method)
        if a in table and b in table:
            cells = []
            for it in budgets:
                diff, seeds = paired(table, a, b, it)
                cells.append("" if not seeds else f"{diff:+.3f} (seeds {', '.join(map(str, seeds))})")
            slope = slope_per_doubling(table, a, b)
            lines.append(f"| {label(a)} - {label(b)} | " + " | ".join(cells)
                         + f" | {'' if math.isnan(slope) else f'{slope:+.3f}'} |")
    lines.append("")
    (results / "budget.md").write_text("\n".join(lines))
    plot(table, trainers, results / "budget.png")
    return "\n".join(lines)


def plot(table: dict, trainers: list[Series], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one colour per trainer; dashed lines and squares for pseudo-labels other than geodesic
    colours = {t: f"C{i}" for i, t in enumerate(dict.fromkeys(t for t, _ in trainers))}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, metric in zip(axes, ("Dice", "recall", "HD95")):
        for trainer in trainers:
            budgets = sorted(table[trainer])
            colour = colours[trainer[0]]
            means = [np.mean([v[metric] for v in table[trainer][it].values()]) for it in budgets]
            line, marker = ("-", "o") if trainer[1] in ("geodesic", FULL_LABELS) else ("--", "s")
            ax.plot(budgets, means, line, marker=marker, markevery=[], color=colour, label=label(trainer))
            for it in budgets:
                values = [v[metric] for v in table[trainer][it].values()]
                ax.plot([it] * len(values), values, marker, color=colour, alpha=0.5, markersize=4)
        ax.set_xscale("log", base=2)
        budgets = sorted({it for trainer in trainers for it in table[trainer]})
        ax.set_xticks(budgets, [str(it) for it in budgets])
        ax.minorticks_off()
        ax.set_xlabel("training iterations")
        ax.set_ylabel(metric + (" (mm)" if metric == "HD95" else ""))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Test set against the training budget (lines: mean over seeds; points: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results" / "budget",
                        help="folder with one e{EPOCHS}/ results folder per budget (default benchmarks/results/budget)")
    parser.add_argument("--also", type=Path, nargs="*", default=[],
                        help="more runs.jsonl files whose records join the curve (e.g. validation runs at one budget)")
    parser.add_argument("--target", default="ventricles", help="the benchmark target whose runs make the curve "
                                                                   "(default ventricles)")
    args = parser.parse_args()
    runs = load_runs(args.results, args.also, args.target)
    if not runs:
        raise SystemExit(f"budget_curve: no {args.target} runs in {args.results}/e*/runs.jsonl")
    print(write_report(runs, args.results))


if __name__ == "__main__":
    main()
