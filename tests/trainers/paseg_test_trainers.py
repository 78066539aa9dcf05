"""Test-only short trainers, found by nnU-Net through nnUNet_extTrainer (set by the ``nnunet_env`` fixture)."""
import functools
import os

import torch

from nnunetv2_paseg.trainers import nnUNetTrainerPASeg


class nnUNetTrainerPASeg_test(nnUNetTrainerPASeg):
    """A few CPU iterations, no mirroring; the ramp-up starts after epoch 0 (any pseudo-Dice >= 0 starts it) and
    spans the whole run, so that every later epoch has its own weight.

    ``PASEG_TEST_NUM_EPOCHS`` (default 2) sets the number of epochs, so that a finished run can be continued
    (``--c``) for more epochs under the same output folder.
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("PASEG_TEST_NUM_EPOCHS", "2"))
        self.num_iterations_per_epoch = 3
        self.num_val_iterations_per_epoch = 1
        self.ramp_fraction = 1.0
        self.ramp_start_dice = 0.0

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):
        rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, _ = \
            super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        self.inference_allowed_mirroring_axes = None
        return rotation_for_da, do_dummy_2d_data_aug, initial_patch_size, None


class nnUNetTrainerPASeg_compiletest(nnUNetTrainerPASeg):
    """nnUNetTrainerPASeg with the network compiled on the CPU too (nnU-Net compiles on CUDA only), by the
    ``aot_eager`` backend: dynamo's tracing and AOT autograd as on a GPU, without minutes of C++ code generation."""

    def _do_i_compile(self) -> bool:
        return True

    def initialize(self):
        compile_ = torch.compile
        torch.compile = functools.partial(compile_, backend="aot_eager")  # nnU-Net calls torch.compile(module)
        try:
            super().initialize()
        finally:
            torch.compile = compile_


class nnUNetTrainerPASeg_vmUnlabelledtest(nnUNetTrainerPASeg):
    """Variance minimisation per voxel count on the voxels the pseudo-labels do not call background, weight 3."""

    w_vm = 3.0
    vm_normalise = "voxels"
    vm_region = "unlabelled"


class nnUNetTrainerPASeg_vmBandtest(nnUNetTrainerPASeg_vmUnlabelledtest):
    """nnUNetTrainerPASeg_vmUnlabelledtest on the unlabelled voxels within 2 voxels of the predicted foreground."""

    vm_region = "band"
