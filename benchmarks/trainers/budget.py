"""Fixed-budget schedules for the demo and the accuracy benchmark, found by nnU-Net through nnUNet_extTrainer.

Every trainer compared gets the same schedule: ``PASEG_BUDGET_EPOCHS`` epochs (default 24) of
``PASEG_BUDGET_ITERATIONS`` iterations (default 50), about 15 minutes of a 2-core CPU on the atlas cohort's
``3d_small`` configuration. nnU-Net's final validation is skipped: these runs train on all cases (fold ``all``) and
are evaluated on the held-out test set instead. ``PASEG_TORCH_THREADS`` (CPU only) sets torch's thread count. nnUNetTrainerSCM_budget starts from the checkpoints of
nnUNetTrainerPASeg_budget and nnUNetTrainerPASegAux_budget of the same dataset, plans and fold.
"""
import os

import torch

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2_paseg import (nnUNetTrainerPASeg, nnUNetTrainerPASeg_pCE, nnUNetTrainerPASegAux,
                            nnUNetTrainerSCM)


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


class nnUNetTrainer_budget(_Budget, nnUNetTrainer):
    """nnU-Net's own trainer (full labels: the upper bound)."""


class nnUNetTrainerPASeg_pCE_budget(_Budget, nnUNetTrainerPASeg_pCE):
    """Partial loss only."""


class nnUNetTrainerPASeg_budget(_Budget, nnUNetTrainerPASeg):
    """Stage 1 of PA-Seg."""


class nnUNetTrainerPASegAux_budget(_Budget, nnUNetTrainerPASegAux):
    """Stage 1 of PA-Seg, auxiliary architecture (for stage 2)."""


class nnUNetTrainerSCM_budget(_Budget, nnUNetTrainerSCM):
    """Stage 2 of PA-Seg from the two budget stage-1 models."""

    primary_stage1_trainer = "nnUNetTrainerPASeg_budget"
    aux_stage1_trainer = "nnUNetTrainerPASegAux_budget"
