"""Time per training iteration of nnU-Net trainers on identical batches of one preprocessed dataset.

Every trainer is built as ``nnUNetv2_train`` builds it (same dataset, configuration, fold, device, same initial
weights), prepared with its own ``on_train_start``, and then runs ``train_step`` on the same augmented batches,
drawn once from the first trainer's data loader. Steps are interleaved (trainer A step i, trainer B step i, ...)
so that a busy machine slows all trainers alike. Data loading is not timed.

    python benchmarks/bench_trainer_overhead.py -d 501 -c 3d_small -device cpu \\
        -tr nnUNetTrainer nnUNetTrainerPASeg nnUNetTrainerSCM

Needs nnUNet_preprocessed; checkpoints, logs and plans copies go to a temporary nnUNet_results unless
``--results`` names a folder. The first trainer is the reference of the ratios. SCM trainers start from their own
initial networks unless PASEG_PRIMARY_WEIGHTS / PASEG_AUX_WEIGHTS name stage-1 checkpoints.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path


def time_train_steps(trainers: dict, batches: list[dict], warmup: int, device_type: str) -> dict[str, list[float]]:
    """Seconds per ``train_step`` for each trainer on ``batches`` (the first ``warmup`` are run, not timed).

    Each step gets its own copy of the batch, so no trainer sees another's in-place changes. A trainer whose
    pipeline carries a clean guide image as the last channel (``guide_in_batch``) gets the batch's channel mean there,
    which costs the same.
    """
    import torch

    def sync() -> None:
        if device_type == "cuda":
            torch.cuda.synchronize()

    seconds: dict[str, list[float]] = {name: [] for name in trainers}
    for i, batch in enumerate(batches):
        for name, trainer in trainers.items():
            data = batch["data"].clone()
            if getattr(trainer, "guide_in_batch", False):
                data = torch.cat([data, data.mean(1, keepdim=True)], 1)
            fresh = {"data": data, "target": [t.clone() for t in batch["target"]]
                     if isinstance(batch["target"], list) else batch["target"].clone()}
            sync()
            start = time.perf_counter()
            trainer.train_step(fresh)
            sync()
            if i >= warmup:
                seconds[name].append(time.perf_counter() - start)
    return seconds


def stand_in_stage1_weights(trainer, folder: Path) -> None:
    """SCM starts from stage-1 checkpoints. Its speed does not depend on the weights, so unless
    PASEG_PRIMARY_WEIGHTS / PASEG_AUX_WEIGHTS name real ones, its own freshly initialised networks stand in."""
    import torch
    from nnunetv2_paseg.trainers.scm import AUX_WEIGHTS_ENV, PRIMARY_WEIGHTS_ENV, unwrap

    trainer.initialize()
    for env_var, network in ((PRIMARY_WEIGHTS_ENV, trainer.network), (AUX_WEIGHTS_ENV, trainer.aux_network)):
        if not os.environ.get(env_var):
            path = folder / f"{env_var.lower()}.pth"
            torch.save({"network_weights": unwrap(network).state_dict()}, path)
            os.environ[env_var] = str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", required=True, help="dataset id or name")
    parser.add_argument("-c", default="3d_small", help="configuration (default: 3d_small)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default: nnUNetPlans)")
    parser.add_argument("-f", default="0", help="fold whose training cases give the batches (default: 0)")
    parser.add_argument("-tr", nargs="+", default=["nnUNetTrainer", "nnUNetTrainerPASeg"],
                        help="trainer class names; the first is the reference (default: nnUNetTrainer "
                             "nnUNetTrainerPASeg)")
    parser.add_argument("-device", default="cpu", choices=["cpu", "cuda"], help="default: cpu")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per trainer (default: 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: 3)")
    parser.add_argument("--results", help="nnUNet_results for the trainers' output (default: a temporary folder)")
    parser.add_argument("--json", help="also write the timings to this JSON file")
    args = parser.parse_args(argv)
    if not os.environ.get("nnUNet_preprocessed"):
        raise SystemExit("bench_trainer_overhead: the environment variable nnUNet_preprocessed is not set")

    with tempfile.TemporaryDirectory() as tmp:
        # nnunetv2.paths reads the variables when first imported: set them before any nnunetv2 import.
        os.environ["nnUNet_results"] = args.results or tmp
        os.environ.setdefault("nnUNet_n_proc_DA", "0")
        import torch
        from nnunetv2.run.run_training import get_trainer_from_args
        from nnunetv2_paseg.trainers.paseg import nnUNetTrainerPASeg
        from nnunetv2_paseg.trainers.scm import nnUNetTrainerSCM

        device = torch.device(args.device)
        fold = args.f if args.f == "all" else int(args.f)
        trainers = {}
        for name in args.tr:
            torch.manual_seed(0)
            trainer = get_trainer_from_args(str(args.d), args.c, fold, name, args.p, device=device)
            if isinstance(trainer, nnUNetTrainerSCM):
                stand_in_stage1_weights(trainer, Path(tmp))
            trainer.on_train_start()
            trainer.on_train_epoch_start()
            if isinstance(trainer, nnUNetTrainerPASeg):
                trainer.loss.weight = 1.0  # timed as after the ramp's start: regularisers in the backward pass
            trainers[name] = trainer
        loader = next(iter(trainers.values())).dataloader_train
        batches = [next(loader) for _ in range(args.warmup + args.iterations)]
        seconds = time_train_steps(trainers, batches, args.warmup, device.type)

    reference = statistics.mean(seconds[args.tr[0]])
    first = next(iter(trainers.values()))
    print(f"dataset {args.d}, configuration {args.c}, device {args.device}, patch "
          f"{first.configuration_manager.patch_size}, batch size {first.batch_size}, torch threads "
          f"{torch.get_num_threads()}, {args.iterations} timed iterations after {args.warmup} warm-up")
    print(f"{'trainer':<40} {'s/iteration':>12} {'std':>8} {'ratio':>7}")
    for name, values in seconds.items():
        mean = statistics.mean(values)
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:<40} {mean:>12.4f} {std:>8.4f} {mean / reference:>7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "seconds_per_iteration": seconds}, indent=2))


if __name__ == "__main__":
    main()
