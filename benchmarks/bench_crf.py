"""Benchmark: MultiViewGatedCRFLoss against the dense unfold-based reference, forward + backward.

    python benchmarks/bench_crf.py [--repeats 3] [--threads 1] [--dense-limit-gb 8]

Each measurement runs in a fresh subprocess, so that peak memory belongs to that one implementation:
host memory is the process's peak resident set size (Linux VmHWM, reset through /proc/self/clear_refs once the
inputs exist and freed memory went back to the OS) minus the resident size at that point, over the warm-up and the
timed calls; GPU memory is torch.cuda.max_memory_allocated above the inputs.
Time is the median wall time of ``--repeats`` calls after one warm-up call. Both sides run with the same number
of CPU threads, 1 by default: on a machine shared with other work, OpenMP threads that wait for busy cores at every
operation's barrier penalise the fast loss's many small operations far more than the dense one's few huge ones.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nnunetv2_paseg.losses import MultiViewGatedCRFLoss  # noqa: E402
from benchmarks.reference_losses import dense_multi_view_gated_crf  # noqa: E402

RADIUS = 5
SETTINGS = {"reference": (2, 2, 64, 64, 48), "full patch": (2, 2, 128, 128, 128)}


def make_inputs(shape: tuple[int, ...], device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Smooth random 'anatomy': a z-scored, blurred noise image and softmax probabilities of a blurred field."""
    generator = torch.Generator().manual_seed(0)
    n, c, *size = shape

    def smooth(channels: int) -> torch.Tensor:
        field = torch.randn(n, channels, *size, generator=generator)
        for _ in range(2):
            field = F.avg_pool3d(field, 5, stride=1, padding=2, count_include_pad=False)
        return (field - field.mean()) / field.std()

    image = smooth(1) + 0.05 * torch.randn(n, 1, *size, generator=generator)
    probs = torch.softmax(4 * smooth(c), 1)
    return probs.to(device, dtype).requires_grad_(), image.to(device, dtype)


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (reported in kB), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status: host memory is measured on Linux only")


def measure(impl: str, shape: tuple[int, ...], device: str, precision: str, repeats: int) -> dict:
    """Time and peak memory of forward + backward for one implementation, in this process."""
    dtype = torch.float16 if precision == "amp" else torch.float32
    probs, image = make_inputs(shape, device, dtype)
    if impl in ("fast", "loop"):  # "loop": the offset loop also where the fused CUDA kernel would run
        crf = MultiViewGatedCRFLoss(radius=RADIUS)
        crf.use_fused_kernel = impl == "fast"

        def loss_fn():
            return crf(probs, image)
    else:
        def loss_fn():
            return dense_multi_view_gated_crf(probs, image, radius=RADIUS)

    def step() -> float:
        with torch.autocast(device_type=device, enabled=precision == "amp"):
            value = loss_fn()
        value.backward()
        probs.grad = None
        return float(value)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    if device == "cuda":
        sync()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        # Hand the input generation's freed temporaries back to the OS, or the loss would reuse them unseen.
        ctypes.CDLL(None).malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident size
        baseline = _status_bytes("VmRSS")
    value = step()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - baseline
    else:
        peak = _status_bytes("VmHWM") - baseline
    return {"time_s": statistics.median(times), "peak_bytes": peak, "value": value}


def run_child(impl: str, setting: str, device: str, precision: str, repeats: int, threads: int) -> dict:
    args = [sys.executable, __file__, "--child", impl, setting, device, precision, str(repeats), str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{impl} {setting} {device} {precision} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gb(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:.3f} GiB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after 1 warm-up)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch, both sides (default 1)")
    parser.add_argument("--dense-limit-gb", type=float, default=8.0,
                        help="skip the dense reference where its estimated peak memory exceeds this")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        impl, setting, device, precision, repeats, threads = args.child
        torch.set_num_threads(int(threads))
        print(json.dumps(measure(impl, SETTINGS[setting], device, precision, int(repeats))))
        return

    targets = [("cpu", "fp32")] + ([("cuda", "fp32"), ("cuda", "amp")] if torch.cuda.is_available() else [])
    print(f"mCRF forward+backward: radius {RADIUS}, 3 views, smooth random image and probabilities; "
          f"torch {torch.__version__}, {platform.processor() or platform.machine()}, CPU threads {args.threads}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print("time: median of {} calls after a warm-up; memory: peak above the inputs (CPU: peak resident size rise "
          "(VmHWM) in a fresh process; GPU: torch.cuda.max_memory_allocated)".format(args.repeats))
    header = f"{'setting':<26}{'device':<11}{'fast':>20}{'dense':>24}{'speed-up':>10}{'memory':>9}{'|rel diff|':>12}"
    print(header)
    for device, precision in targets:
        dense_per_voxel = None
        for setting, shape in SETTINGS.items():
            voxels = shape[0] * shape[2] * shape[3] * shape[4]
            label = f"{setting} {'x'.join(map(str, shape[2:]))}"
            fast = run_child("fast", setting, device, precision, args.repeats, args.threads)
            fast_text = f"{fast['time_s']:.3f} s {gb(fast['peak_bytes'])}"
            # Dense memory grows linearly with the voxel count; the first setting's measurement sizes the rest.
            estimate = None if dense_per_voxel is None else dense_per_voxel * voxels
            if estimate is not None and estimate > args.dense_limit_gb * 2 ** 30:
                print(f"{label:<26}{device + ' ' + precision:<11}{fast_text:>20}"
                      f"   not run: needs ~{gb(estimate)}")
                continue
            dense = run_child("dense", setting, device, precision, args.repeats, args.threads)
            dense_per_voxel = dense["peak_bytes"] / voxels
            speed_up = dense["time_s"] / fast["time_s"]
            memory = dense["peak_bytes"] / max(fast["peak_bytes"], 1)
            rel = abs(fast["value"] - dense["value"]) / abs(dense["value"])
            print(f"{label:<26}{device + ' ' + precision:<11}{fast_text:>20}"
                  f"{dense['time_s']:>9.3f} s {gb(dense['peak_bytes']):>12}{speed_up:>9.1f}x{memory:>8.1f}x"
                  f"{rel:>12.1e}")


if __name__ == "__main__":
    main()
