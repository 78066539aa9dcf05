"""Test-only short trainers for the two-stage pipeline test (tests/test_trainer_scm.py), found by nnU-Net through
nnUNet_extTrainer (set by the ``nnunet_env`` fixture)."""
import os

import torch

from nnunetv2_paseg.trainers import (nnUNetTrainerPASeg, nnUNetTrainerPASegAux, nnUNetTrainerPASegAux_pCE,
                                    nnUNetTrainerSCM, nnUNetTrainerSCM_crossKD)


class _Short:
    """Mixin: ``short_epochs`` epochs of 1 iteration (1 validation iteration), no mirroring."""

    short_epochs = 1

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.short_epochs
        self.num_iterations_per_epoch = 1
        self.num_val_iterations_per_epoch = 1

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, _ = \
            super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, None


class _Stage1(_Short):
    def perform_actual_validation(self, save_probabilities: bool = False):
        pass  # only the checkpoint matters here; SCM's own run validates


class nnUNetTrainerPASeg_scmtest(_Stage1, nnUNetTrainerPASeg):
    pass


class nnUNetTrainerPASegAux_scmtest(_Stage1, nnUNetTrainerPASegAux):
    pass


class nnUNetTrainerPASegAux_pCE_scmtest(_Stage1, nnUNetTrainerPASegAux_pCE):
    pass


class _ShortSCM(_Short):
    """4 epochs, snapshots (when refreshed) refreshed at epoch 2, a checkpoint after every epoch.
    ``PASEG_TEST_STOP_AFTER_EPOCH=k`` makes the run exit (code 3) right after epoch k's checkpoint, as an interrupted
    training would."""

    short_epochs = 4
    primary_stage1_trainer = "nnUNetTrainerPASeg_scmtest"

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.snapshot_fraction = 0.5
        self.save_every = 1

    def on_epoch_end(self):
        super().on_epoch_end()
        stop_after = os.environ.get("PASEG_TEST_STOP_AFTER_EPOCH")
        if stop_after is not None and self.current_epoch - 1 == int(stop_after):
            raise SystemExit(3)


class nnUNetTrainerSCM_scmtest(_ShortSCM, nnUNetTrainerSCM):
    """SCM's defaults, from the short PASeg and partial-loss auxiliary trainers above."""

    aux_stage1_trainer = "nnUNetTrainerPASegAux_pCE_scmtest"


class nnUNetTrainerSCM_crossKD_scmtest(_ShortSCM, nnUNetTrainerSCM_crossKD):
    """The paper's configuration (refreshed snapshots, both networks trained), from the short PASeg and PASegAux
    trainers above."""

    aux_stage1_trainer = "nnUNetTrainerPASegAux_scmtest"
