"""Fixed-budget versions of the trainers, for CPU demos and benchmarks: ``NAME_budget`` for nnUNetTrainer and
every trainer of this package (like nnU-Net's ``nnUNetTrainer_5epochs``, a short schedule as a subclass).

Each runs ``PASEG_BUDGET_EPOCHS`` epochs (default 24) of ``PASEG_BUDGET_ITERATIONS`` iterations (default 50), with a
tenth as many validation iterations, and skips nnU-Net's final validation (the demo and the benchmark train on all
cases, fold ``all``, and evaluate on a held-out test set). On the CPU, ``PASEG_TORCH_THREADS`` sets torch's thread
count. An SCM budget trainer starts from the checkpoints of the budget versions of its stage-1 trainers.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import torch

from nnunetv2_paseg.trainers.scm import nnUNetTrainerSCM


class _Budget:
    """Mixin: the schedule from the environment, no final validation."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("PASEG_BUDGET_EPOCHS", "24"))
        self.num_iterations_per_epoch = int(os.environ.get("PASEG_BUDGET_ITERATIONS", "50"))
        self.num_val_iterations_per_epoch = max(1, self.num_iterations_per_epoch // 10)
        if self.device.type == "cpu" and os.environ.get("PASEG_TORCH_THREADS"):
            # nnUNetv2_train gives torch one thread per core; beside the data-augmentation workers on a small CPU
            # the threads then mostly wait for each other (measured ~10x slower per iteration on 2 shared cores).
            torch.set_num_threads(int(os.environ["PASEG_TORCH_THREADS"]))

    def perform_actual_validation(self, save_probabilities: bool = False):
        self.print_to_log_file("final validation skipped (fixed-budget run; evaluated on the test set)")


def budget_trainer(base: type) -> type:
    """``base`` on the fixed budget, named ``<base name>_budget``."""
    # They live in the package's namespace (nnunetv2_paseg.trainers), where nnU-Net's look-up finds them.
    attributes = {"__doc__": f"{base.__name__} on the fixed budget of nnunetv2_paseg.trainers.budget.",
                  "__module__": __package__, "__qualname__": f"{base.__name__}_budget"}
    if issubclass(base, nnUNetTrainerSCM):
        attributes["primary_stage1_trainer"] = base.primary_stage1_trainer + "_budget"
        attributes["aux_stage1_trainer"] = base.aux_stage1_trainer + "_budget"
    return type(f"{base.__name__}_budget", (_Budget, base), attributes)


def budget_trainers(bases: Iterable[type]) -> dict[str, type]:
    """{name: class} of the budget version of each of ``bases``."""
    return {f"{base.__name__}_budget": budget_trainer(base) for base in bases}
