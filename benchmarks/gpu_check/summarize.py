"""The GPU check's results folder as one record: ``benchmarks/results/gpu.json``.

    .venv/bin/python benchmarks/gpu_check/summarize.py RESULTS_FOLDER [--out benchmarks/results/gpu.json]

RESULTS_FOLDER is what ``run.sh`` wrote to ``$OUT`` on the CUDA machine (``main.log``, ``trainer_big.json``,
``trainer_small.json``, ``crf.json``, ``accuracy.json``, and ``crf_fused.json`` of ``crf_fused_check.py``). Step
ratios are against nnUNetTrainer's mean step in the same run; what a step of the check did not produce is null, so a
partial run still gives a record that says what is missing.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# The check's trainers (trainers/gpu_budget.py) are the benchmark's budget trainers under short names.
CHECK_TRAINERS = {"G_full": "nnUNetTrainer", "G_pce": "nnUNetTrainerPASeg_pCE", "G_paseg": "nnUNetTrainerPASeg",
                  "G_rampstart": "nnUNetTrainerPASeg_rampFromStart"}


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def step_times(timings: dict | None) -> tuple[dict, dict]:
    """({trainer: ratio to nnUNetTrainer}, {trainer: mean seconds per iteration}) of one bench_trainer_overhead JSON."""
    if not timings:
        return {}, {}
    seconds = {name: statistics.mean(values) for name, values in timings["seconds_per_iteration"].items() if values}
    reference = seconds.get("nnUNetTrainer")
    ratios = {name: s / reference for name, s in seconds.items() if reference and name != "nnUNetTrainer"}
    return ratios, seconds


def _search(pattern: str, text: str, cast=str, group: int = 1):
    found = re.findall(pattern, text, flags=re.MULTILINE)
    if not found:
        return None
    last = found[-1]
    return cast(last[group - 1] if isinstance(last, tuple) else last)


def summarize(results: Path) -> dict:
    log = (results / "main.log").read_text() if (results / "main.log").is_file() else ""
    ratio_big, sec_big = step_times(_json(results / "trainer_big.json"))
    ratio_small, sec_small = step_times(_json(results / "trainer_small.json"))
    compile_rc = _search(r"compile smoke rc=(\d+) s=(\d+)", log, int, 1)
    passed = _search(r"(\d+) passed", log, int)
    failed = _search(r"(\d+) failed", log, int)
    accuracy = _json(results / "accuracy.json") or {}
    return {
        "gpu": _search(r"^(NVIDIA [^,]+),", log),
        "torch": _search(r"^torch (\S+) cuda", log),
        "commit": _search(r"^commit (\w+)", log),
        "step_ratio": {"3d_big": ratio_big, "3d_small": ratio_small},
        "seconds_per_iteration": {"3d_big": sec_big, "3d_small": sec_small},
        "crf": _json(results / "crf.json"),
        # crf_fused_check.py: the fused kernel against the offset loop on CUDA (a separate short call)
        "crf_fused_check": _json(results / "crf_fused.json"),
        "compile_ok": None if compile_rc is None else compile_rc == 0 and "Epoch time" in log,
        "compile_seconds": _search(r"compile smoke rc=(\d+) s=(\d+)", log, int, 2),
        "fastgeodis_agreement": _search(r"voxel agreement min ([0-9.]+)", log, float),
        "cuda_tests": None if passed is None and failed is None else {"passed": passed or 0, "failed": failed or 0},
        "epochs": _search(r"stage 1 on 3d_small: (\d+) epochs", log, int),
        "accuracy": {CHECK_TRAINERS.get(trainer, trainer): statistics.mean(c["Dice"] for c in classes.values())
                     for trainer, classes in accuracy.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="the GPU check's $OUT folder, copied back")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "gpu.json")
    args = parser.parse_args()
    record = summarize(args.results)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
