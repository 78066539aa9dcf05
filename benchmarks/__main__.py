"""All speed and memory benchmarks in one command, each side measured in the same run, with a summary table.

    python -m benchmarks [--quick] [--parts crf conversion trainer scale] [--out benchmarks/results/speed.md]

Parts (each in its own processes; see the module named for the details):
- crf         ``benchmarks/bench_crf.py``: MultiViewGatedCRFLoss against the dense unfold reference;
- conversion  ``benchmarks.bench_conversion``: ``paseg_convert -np 2`` against reading images and writing labels;
- trainer     ``benchmarks/bench_trainer_overhead.py``: train_step of nnUNetTrainerPASeg and nnUNetTrainerSCM over
              nnUNetTrainer's, on identical batches;
- scale       ``benchmarks.bench_scale``: peak memory of one nnUNetTrainerPASeg step versus patch size.
The trainer and scale parts use a small dataset prepared here in a temporary folder: real brains (as in the
conversion part) at 2 mm, clicked, converted with ``paseg_convert``, planned and preprocessed with
``nnUNetv2_plan_and_preprocess``, plus a ``3d_small`` configuration (``paseg_add_small_plans``). On a GPU they use
the default ``3d_fullres`` network. On the CPU every side runs torch with one thread (as bench_crf does): on a
machine shared with other work, threads waiting for busy cores add noise that is not the code's. ``--quick`` runs
fewer repeats and sizes.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PARTS = ("crf", "conversion", "trainer", "scale")
DATASET_ID = "987"
TRAINERS = ("nnUNetTrainer", "nnUNetTrainerPASeg", "nnUNetTrainerSCM")


def run(cmd: list[str], env: dict | None = None, timeout: float | None = None) -> str:
    """Run ``cmd`` (a module or script of this repository, or a console script), echo and return its stdout."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-3000:]}")
    print(proc.stdout, end="", flush=True)
    return proc.stdout


def console_script(name: str) -> list[str]:
    script = Path(sys.executable).with_name(name)
    if not script.exists():
        raise SystemExit(f"{script} is missing: install the project (pip install -e . or scripts/setup.sh)")
    return [str(script)]


def machine() -> dict:
    import torch

    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU only",
            "python": platform.python_version(), "date": datetime.date.today().isoformat()}


def prepare_dataset(root: Path) -> dict[str, str]:
    """The small preprocessed dataset of the trainer and scale parts; returns its nnU-Net environment."""
    from benchmarks.bench_conversion import make_cases

    env = {"nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "preprocessed"),
           "nnUNet_results": str(root / "results"), "nnUNet_def_n_proc": "2"}
    for key in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        Path(env[key]).mkdir(parents=True)
    # 6 cases: nnU-Net's 5-fold split needs at least 5. 2 mm voxels keep the network and patches CPU-sized.
    make_cases(root / "inputs", 6, grid_size=(80, 96, 80), spacing=2.0,
               structures=("lateral_ventricle", "putamen"), verbose=False)
    run(console_script("paseg_convert") + ["-i", str(root / "inputs" / "images"), "-a", str(root / "inputs" / "clicks"),
                                           "-d", DATASET_ID, "-n", "BenchBrains", "-np", "2", "--device", "cpu"], env)
    run(console_script("nnUNetv2_plan_and_preprocess") + ["-d", DATASET_ID, "-c", "3d_fullres", "-np", "2"], env)
    run(console_script("paseg_add_small_plans") + ["-d", DATASET_ID, "-n", "3d_small", "--max_features", "32"], env)
    return env


def crf_part(quick: bool) -> list[tuple]:
    out = run([sys.executable, "benchmarks/bench_crf.py", "--repeats", "1" if quick else "3"])
    rows = []
    for line in out.splitlines():
        match = re.match(r"(reference|full patch) (\S+)\s+(cpu|cuda) (\S+)\s+([\d.]+) s\s+([\d.]+) GiB"
                         r"(?:\s+([\d.]+) s\s+([\d.]+) GiB\s+([\d.]+)x\s+([\d.]+)x)?", line)
        if not match:
            continue
        setting, shape, device, precision, t, mem, dt, dmem, speed, memory = match.groups()
        where = f"mCRF {setting} {shape}, {device} {precision}"
        if dt is None:
            rows.append((where, f"{t} s, {mem} GiB", "dense: did not fit (see above)", "", ">= 10x"))
        else:
            rows.append((where, f"{t} s, {mem} GiB", f"{dt} s, {dmem} GiB", f"{speed}x faster, {memory}x less memory",
                         ">= 10x time and memory (reference, CPU)"))
    return rows


def conversion_part(quick: bool, tmp: Path) -> list[tuple]:
    out_json = tmp / "conversion.json"
    run([sys.executable, "-m", "benchmarks.bench_conversion", "--cases", "10" if quick else "12",
         "--repeats", "1" if quick else "2", "--json", str(out_json)])
    rows = []
    for r in json.loads(out_json.read_text()):
        rows.append((f"paseg_convert, {r['cases']} cases 240x240x155, -np {r['num_processes']}, {r['device']}",
                     f"{r['convert_s_per_case']:.2f} s/case (start-up {r['convert_startup_s']:.1f} s of "
                     f"{r['convert_s_per_case'] * r['cases']:.1f} s)",
                     f"{r['floor_s_per_case']:.2f} s/case (read image + write label)",
                     f"{r['ratio']:.2f}x", "<= 2x"))
    return rows


def trainer_part(env: dict, quick: bool, device: str, configuration: str, tmp: Path) -> list[tuple]:
    """SCM's stage-1 checkpoints: bench_trainer_overhead saves its freshly initialised networks as stand-ins (the
    step's cost does not depend on the weights)."""
    out_json = tmp / "trainer.json"
    iterations, warmup = ("3", "1") if quick else ("10", "3")
    run([sys.executable, "benchmarks/bench_trainer_overhead.py", "-d", DATASET_ID, "-c", configuration,
         "-device", device, "-tr", *TRAINERS, "--iterations", iterations, "--warmup", warmup, "--json", str(out_json)],
        {**env, "OMP_NUM_THREADS": "1"})
    seconds = json.loads(out_json.read_text())["seconds_per_iteration"]
    reference = sum(seconds[TRAINERS[0]]) / len(seconds[TRAINERS[0]])
    targets = {"nnUNetTrainerPASeg": "<= 1.15x", "nnUNetTrainerSCM": "<= 2.8x"}
    return [(f"train_step {name}, {configuration}, {device}", f"{sum(v) / len(v):.3f} s",
             f"{reference:.3f} s (nnUNetTrainer)", f"{sum(v) / len(v) / reference:.2f}x", targets[name])
            for name, v in seconds.items() if name in targets]


def scale_part(env: dict, quick: bool, device: str, configuration: str) -> tuple[list[tuple], str]:
    from benchmarks.bench_scale import run as run_scale, table

    if device == "cuda":
        patches = [64, 96, 128] if quick else [64, 96, 128, 160]
    else:
        patches = [32, 48, 64] if quick else [32, 48, 64, 96]
    os.environ.update(env)
    rows = run_scale(DATASET_ID, configuration, patches, device)
    text = table(rows, device)
    print(f"nnUNetTrainerPASeg, one training step, configuration {configuration}, {device}:\n{text}", flush=True)
    summary = []
    for r in rows:
        if "error" in r:
            summary.append((f"PASeg step, patch {r['patch']}^3, {device}", f"failed: {r['error']}", "", "", "fits"))
            continue
        peak = r.get("cuda_peak_bytes", r["peak_rss_bytes"])
        summary.append((f"PASeg step, patch {r['patch']}^3, batch {r['batch_size']}, {configuration}, {device}",
                        f"{peak / 2 ** 30:.2f} GiB peak, {r['step_s']:.2f} s", "", "", "what fits"))
    return summary, text


def markdown(info: dict, command: str, rows: list[tuple], details: dict[str, str], seconds: float) -> str:
    lines = ["# Speed and memory benchmarks", "",
             f"Command: `{command}`  ", f"Date: {info['date']}; wall time {seconds / 60:.1f} min  ",
             f"Machine: {info['cpu']}, {info['cores']} cores; device: {info['device']}; torch {info['torch']}, "
             f"Python {info['python']}", "",
             "| benchmark | ours | baseline | ratio | target |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(str(c) for c in row)} |" for row in rows]
    for title, text in details.items():
        lines += ["", f"## {title}", "", text.strip()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, cases and patch sizes")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="which parts (default all)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "speed.md",
                        help="markdown summary (default benchmarks/results/speed.md)")
    args = parser.parse_args(argv)
    import torch

    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    configuration = "3d_fullres" if device == "cuda" else "3d_small"
    info = machine()
    print(f"Machine: {info}", flush=True)
    rows: list[tuple] = []
    details: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="paseg_benchmarks_"))
    try:
        if "crf" in args.parts:
            print("\n== mCRF ==", flush=True)
            rows += crf_part(args.quick)
        if "conversion" in args.parts:
            print("\n== conversion ==", flush=True)
            rows += conversion_part(args.quick, tmp)
        if {"trainer", "scale"} & set(args.parts):
            print("\n== preparing the trainer dataset ==", flush=True)
            env = prepare_dataset(tmp / "nnunet")
            if "trainer" in args.parts:
                print("\n== trainer overhead ==", flush=True)
                rows += trainer_part(env, args.quick, device, configuration, tmp)
            if "scale" in args.parts:
                print("\n== scale ==", flush=True)
                summary, details["Memory of one nnUNetTrainerPASeg step versus patch size"] = scale_part(
                    env, args.quick, device, configuration)
                rows += summary
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    text = markdown(info, command, rows, details, time.perf_counter() - started)
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
