"""Test-only short trainers for the two-stage pipeline test (tests/test_trainer_scm.py), found by nnU-Net through
nnUNet_extTrainer (set by the ``nnunet_env`` fixture)."""
import os

import torch

from nnunetv2_paseg import nnUNetTrainerPASeg, nnUNetTrainerPASegAux, nnUNetTrainerSCM


def _short(trainer, num_epochs: int) -> None:
    trainer.num_epochs = num_epochs
    trainer.num_iterations_per_epoch = 1
    trainer.num_val_iterations_per_epoch = 1


def _no_mirroring(configure):
    def wrapped(self):
        rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, _ = configure(self)
        self.inference_allowed_mirroring_axes = None
        return rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, None
    return wrapped


class nnUNetTrainerPASeg_scmtest(nnUNetTrainerPASeg):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _short(self, 1)

    configure_rotation_dummyDA_mirroring_and_inital_patch_size = _no_mirroring(
        nnUNetTrainerPASeg.configure_rotation_dummyDA_mirroring_and_inital_patch_size)

    def perform_actual_validation(self, save_probabilities: bool = False):
        pass  # only the checkpoint matters here; SCM's own run validates


class nnUNetTrainerPASegAux_scmtest(nnUNetTrainerPASegAux):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _short(self, 1)

    configure_rotation_dummyDA_mirroring_and_inital_patch_size = _no_mirroring(
        nnUNetTrainerPASegAux.configure_rotation_dummyDA_mirroring_and_inital_patch_size)

    def perform_actual_validation(self, save_probabilities: bool = False):
        pass  # only the checkpoint matters here; SCM's own run validates


class nnUNetTrainerSCM_scmtest(nnUNetTrainerSCM):
    """4 epochs, snapshots refreshed at epoch 2, a checkpoint after every epoch, initialised from the two short
    stage-1 trainers above. ``PASEG_TEST_STOP_AFTER_EPOCH=k`` makes the run exit (code 3) right after epoch k's
    checkpoint, as an interrupted training would."""

    primary_stage1_trainer = "nnUNetTrainerPASeg_scmtest"
    aux_stage1_trainer = "nnUNetTrainerPASegAux_scmtest"

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        _short(self, 4)
        self.snapshot_fraction = 0.5
        self.save_every = 1

    configure_rotation_dummyDA_mirroring_and_inital_patch_size = _no_mirroring(
        nnUNetTrainerSCM.configure_rotation_dummyDA_mirroring_and_inital_patch_size)

    def on_epoch_end(self):
        super().on_epoch_end()
        stop_after = os.environ.get("PASEG_TEST_STOP_AFTER_EPOCH")
        if stop_after is not None and self.current_epoch - 1 == int(stop_after):
            raise SystemExit(3)
