"""Benchmark: peak memory (and time) of one nnUNetTrainerPASeg training step versus patch size.

    python -m benchmarks.bench_scale -d 501 -c 3d_small --patches 32 48 64 96 [-device cpu] [-tr nnUNetTrainerPASeg]

The trainer is built as ``nnUNetv2_train`` builds it (plans, configuration, network, deep-supervision losses) and
``initialize``d; every patch size then runs in a fresh process: two ``train_step`` calls (the first a warm-up) on a
random batch of the configuration's batch size, with a target of background, foreground and ``ignore`` voxels at
every deep-supervision scale. The network is convolutional, so it runs on any patch whose sides the
configuration's total pooling stride divides; the data loader and augmentation are left out.

Memory: CPU, the process's peak resident set size (ru_maxrss) and its rise during the steps above the resident
size after initialisation; CUDA, ``torch.cuda.max_memory_allocated`` over the steps. Needs nnUNet_preprocessed.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def measure(dataset: str, configuration: str, trainer_name: str, patch: int, device_name: str) -> dict:
    """One trainer, one patch size, in this process (nnUNet_results must be set; nothing is written there)."""
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args
    from nnunetv2_paseg.trainers.paseg import nnUNetTrainerPASeg

    device = torch.device(device_name)
    trainer = get_trainer_from_args(dataset, configuration, "all", trainer_name, "nnUNetPlans", device=device)
    trainer.initialize()
    if isinstance(trainer, nnUNetTrainerPASeg):
        trainer.loss.weight = 1.0  # measured as after the ramp's start: regularisers in the backward pass
    trainer.network.train()
    strides = trainer.configuration_manager.pool_op_kernel_sizes
    total = [int(torch.tensor([s[a] for s in strides]).prod()) for a in range(3)]
    if any(patch % t for t in total):
        raise SystemExit(f"patch {patch}^3: the network's total stride {total} does not divide it")
    batch_size = trainer.configuration_manager.batch_size
    # the clean guide, where the trainer's pipeline carries one, is one more channel of the batch
    channels = trainer.num_input_channels + int(getattr(trainer, "guide_in_batch", False))
    num_classes = trainer.label_manager.num_segmentation_heads
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(batch_size, channels, patch, patch, patch, generator=generator)
    full = torch.randint(0, num_classes + 1, (batch_size, 1, patch, patch, patch), generator=generator).float()
    scales = trainer._get_deep_supervision_scales() or [[1.0, 1.0, 1.0]]
    target = [torch.nn.functional.interpolate(full, size=[round(patch * s) for s in scale], mode="nearest")
              for scale in scales]
    if not trainer.enable_deep_supervision:
        target = target[0]

    def batch() -> dict:
        return {"data": data.clone(), "target": [t.clone() for t in target] if isinstance(target, list)
                else target.clone()}

    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    baseline = _rss_bytes()
    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        trainer.train_step(batch())
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = {"patch": patch, "batch_size": batch_size, "features": trainer.configuration_manager.network_arch_init_kwargs
           .get("features_per_stage"), "step_s": seconds[-1], "peak_rss_bytes": peak_rss,
           "step_rss_rise_bytes": max(0, peak_rss - baseline)}
    if device.type == "cuda":
        out["cuda_peak_bytes"] = torch.cuda.max_memory_allocated()
        out["cuda_step_bytes"] = torch.cuda.max_memory_allocated() - before
    return out


def run_child(dataset: str, configuration: str, trainer: str, patch: int, device: str, threads: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": os.pathsep.join(
        [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    cmd = [sys.executable, "-m", "benchmarks.bench_scale", "--child", dataset, configuration, trainer, str(patch),
           device]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        return {"patch": patch, "error": tail[0][-300:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def table(rows: list[dict], device: str) -> str:
    lines = ["| patch | batch | step s | peak RSS | step RSS rise |" + (" CUDA peak | CUDA step |" if device == "cuda"
                                                                             else ""),
             "|---|---|---|---|---|" + ("---|---|" if device == "cuda" else "")]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['patch']}^3 | | failed: {r['error']} | | |" + (" | |" if device == "cuda" else ""))
            continue
        line = (f"| {r['patch']}^3 | {r['batch_size']} | {r['step_s']:.2f} | {gib(r['peak_rss_bytes'])} | "
                f"{gib(r['step_rss_rise_bytes'])} |")
        if device == "cuda":
            line += f" {gib(r['cuda_peak_bytes'])} | {gib(r['cuda_step_bytes'])} |"
        lines.append(line)
    return "\n".join(lines)


def run(dataset: str, configuration: str, patches: list[int], device: str, trainer: str = "nnUNetTrainerPASeg",
        threads: int = 1) -> list[dict]:
    return [run_child(dataset, configuration, trainer, p, device, threads) for p in patches]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", help="dataset id or name")
    parser.add_argument("-c", default="3d_small", help="configuration (default 3d_small; 3d_fullres on a GPU)")
    parser.add_argument("-tr", default="nnUNetTrainerPASeg", help="trainer class (default nnUNetTrainerPASeg)")
    parser.add_argument("--patches", type=int, nargs="+", default=[32, 48, 64, 96], help="cube sides")
    parser.add_argument("-device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch (default 1)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        dataset, configuration, trainer, patch, device = args.child
        with tempfile.TemporaryDirectory(prefix="bench_scale_") as results:
            os.environ.setdefault("nnUNet_results", results)
            print(json.dumps(measure(dataset, configuration, trainer, int(patch), device)))
        return
    if not args.d or not os.environ.get("nnUNet_preprocessed"):
        parser.error("-d and the environment variable nnUNet_preprocessed are needed")
    rows = run(args.d, args.c, args.patches, args.device, args.tr, args.threads)
    print(f"{args.tr}, dataset {args.d}, configuration {args.c}, device {args.device}: one training step")
    print(table(rows, args.device))


if __name__ == "__main__":
    main()
