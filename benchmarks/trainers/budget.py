"""Fixed-budget schedules for the demo and the accuracy benchmark, found by nnU-Net through nnUNet_extTrainer.

Every trainer compared gets the same schedule: ``PASEG_BUDGET_EPOCHS`` epochs (default 24) of
``PASEG_BUDGET_ITERATIONS`` iterations (default 50). nnU-Net's final validation is skipped: these runs train on all
cases (fold ``all``) and are evaluated on the held-out test set instead. ``PASEG_TORCH_THREADS`` (CPU only) sets
torch's thread count.

``NAME_budget`` exists for nnUNetTrainer and for every trainer that ``nnunetv2_paseg`` exports (its variants
included). An SCM budget trainer starts from the checkpoints of the budget versions of its stage-1 trainers, of the
same dataset, plans and fold.
"""
import os

import torch

import nnunetv2_paseg.trainers as paseg_trainers
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
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
    attributes = {"__doc__": f"{base.__name__} on the fixed budget of benchmarks/trainers/budget.py.",
                  "__module__": __name__}
    if issubclass(base, nnUNetTrainerSCM):
        attributes["primary_stage1_trainer"] = base.primary_stage1_trainer + "_budget"
        attributes["aux_stage1_trainer"] = base.aux_stage1_trainer + "_budget"
    return type(f"{base.__name__}_budget", (_Budget, base), attributes)


for _base in [nnUNetTrainer] + [getattr(paseg_trainers, name) for name in paseg_trainers.__all__]:
    globals()[f"{_base.__name__}_budget"] = budget_trainer(_base)
