"""The lab's trainers: screening variants of the benchmarks' records, and every trainer on a fixed CPU budget.

Not part of the package: nnU-Net finds them through ``nnUNet_extTrainer`` pointing at this folder, which the demo's
and the benchmarks' environment sets (``benchmarks/harness.py``); they import the package and ``benchmarks`` (the
repository on PYTHONPATH). Their names are those of the recorded runs (``benchmarks/results/``), and each keeps the
settings it was trained with, so some are built on an earlier variant rather than on today's default.

``NAME_budget`` (for nnUNetTrainer, every trainer of the package and every screening variant) runs
``PASEG_BUDGET_EPOCHS`` epochs (default 24) of ``PASEG_BUDGET_ITERATIONS`` iterations (default 50), with a tenth as
many validation iterations, and keeps ``checkpoint_latest.pth`` every 4 epochs; on the CPU, ``PASEG_TORCH_THREADS``
sets torch's thread count. The demo and the benchmark
train on all cases (fold ``all``) and evaluate on a held-out test set, so the final validation is skipped right after
training; ``nnUNetv2_train ... --val`` still validates. An SCM budget trainer starts from the checkpoints of the budget
versions of its stage-1 trainers.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

import nnunetv2_paseg.trainers as product
from benchmarks.trainers.guide import with_guide_channel
from nnunetv2_paseg.losses import MultiViewGatedCRFLoss
from nnunetv2_paseg.trainers import (nnUNetTrainerPASeg, nnUNetTrainerPASegAux, nnUNetTrainerSCM,
                                    nnUNetTrainerSCM_crossKD)


# ------------------------------------------------------------------------------ the first release's CRF and its screening
class nnUNetTrainerPASeg_voxelCRF(nnUNetTrainerPASeg):
    """The settings of the first release, which took the reference's CRF numbers literally: kernel of 6 voxels on a
    copy halved in-plane whatever the spacing, the augmented network input as the guide, and regulariser weights
    relative to the partial loss summed over all deep-supervision outputs. The screening variants below each change
    one of these (docs/experiments.md)."""

    crf_downsample = (1.0, 0.5, 0.5)
    crf_sigma_xy_voxels = 6.0

    def crf_scales(self) -> tuple[float, ...]:
        return self.crf_downsample

    def build_crf_loss(self) -> MultiViewGatedCRFLoss:
        crf = MultiViewGatedCRFLoss(self.crf_radius, self.crf_sigma_xy_voxels, self.crf_sigma_intensity)
        self.print_to_log_file(f"gated CRF on a copy scaled by {self.crf_downsample}, kernel in voxels: {crf}")
        return crf


class nnUNetTrainerPASeg_mmCRF(nnUNetTrainerPASeg):
    """_voxelCRF with the CRF kernel in millimetres: sigma_xy = 5 mm on a grid that resamples only axes finer than
    1 mm. The screening's winner, promoted to the default (this class is the default); kept under this name so that
    its runs stay reproducible."""


class nnUNetTrainerPASeg_mmCRF10(nnUNetTrainerPASeg_mmCRF):
    """_mmCRF with sigma_xy = 10 mm (about the reference's BraTS scale)."""

    crf_sigma_xy_mm = 10.0


class nnUNetTrainerPASeg_mmCRF3(nnUNetTrainerPASeg_mmCRF):
    """_mmCRF with sigma_xy = 3 mm: a kernel for structures a few voxels thick."""

    crf_sigma_xy_mm = 3.0


class nnUNetTrainerPASeg_mmCRF_sigmaX0p2(nnUNetTrainerPASeg_mmCRF):
    """_mmCRF with twice the intensity bandwidth, sigma_x = 0.2: partial-volume voxels at a structure's edge stay
    coupled to its inside."""

    crf_sigma_intensity = 0.2


class _CleanGuide:
    """Mixin: the regularisers see the patch before nnU-Net's intensity augmentation (``guide.with_guide_channel``),
    carried as the training batch's last channel (not with the cascade, whose segmentation channels follow the
    image's)."""

    @property
    def guide_in_batch(self) -> bool:
        return bool(self.w_crf or self.w_vm) and not self.is_cascaded

    def get_training_transforms(self, *args, **kwargs):
        # nnU-Net declares this a staticmethod but calls it through the instance (get_dataloaders).
        pipeline = super().get_training_transforms(*args, **kwargs)
        return with_guide_channel(pipeline, self._num_image_channels()) if self.guide_in_batch else pipeline

    def split_batch(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.guide_in_batch:
            return super().split_batch(data)
        expected = self.num_input_channels + 1
        if data.shape[1] != expected:
            raise ValueError(f"{type(self).__name__}: training batch has {data.shape[1]} channels, expected {expected} "
                             f"({self.num_input_channels} network inputs + the guide)")
        return data[:, :-1], data[:, -1:]


class _FullResWeights:
    """Mixin: the regulariser weights relative to the full-resolution output's partial loss (reference): scaled by
    that output's deep-supervision weight."""

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        if isinstance(self.loss.partial, DeepSupervisionWrapper):
            self.loss.weight *= float(self.loss.partial.weight_factors[0])


class nnUNetTrainerPASeg_cleanGuide(_CleanGuide, nnUNetTrainerPASeg_voxelCRF):
    """_voxelCRF whose regularisers see the patch before nnU-Net's intensity augmentation."""


class nnUNetTrainerPASeg_fullResWeights(_FullResWeights, nnUNetTrainerPASeg_voxelCRF):
    """_voxelCRF with the regulariser weights relative to the full-resolution output's partial loss (reference)."""


class nnUNetTrainerPASeg_allChanges(_CleanGuide, _FullResWeights, nnUNetTrainerPASeg_mmCRF):
    """_voxelCRF with all three changes: mm kernel (5 mm), clean guide, full-resolution weights."""


class nnUNetTrainerPASeg_fullCRF(nnUNetTrainerPASeg):
    """The CRF on the full-size patch, whatever its spacing (more memory and time on fine grids)."""

    crf_grid_mm = None


# ------------------------------------------------------------------------------ the auxiliary network's depth
class nnUNetTrainerPASegAux_presetDepth(nnUNetTrainerPASegAux):
    """The auxiliary residual-encoder U-Net at nnU-Net's ResEnc preset depth (1, 3, 4, 6, 6, ... blocks per stage)."""

    preset_depth = True


class nnUNetTrainerSCM_presetDepthAux(nnUNetTrainerSCM_crossKD):
    """nnUNetTrainerSCM_crossKD (SCM's default when screened) with the auxiliary network at nnU-Net's ResEnc preset
    depth (stage 1: nnUNetTrainerPASegAux_presetDepth)."""

    aux_stage1_trainer = "nnUNetTrainerPASegAux_presetDepth"
    aux_architecture = nnUNetTrainerPASegAux_presetDepth


class nnUNetTrainerSCM_presetDepthAuxEmaTeacher(nnUNetTrainerSCM_presetDepthAux):
    """nnUNetTrainerSCM_presetDepthAux with the moving-average snapshots of nnUNetTrainerSCM_emaTeacher."""

    teacher = "ema"


# ------------------------------------------------------------------------------ the boundary of stage 1 (issue 24)
class nnUNetTrainerPASeg_vmVoxels(nnUNetTrainerPASeg):
    """Variance minimisation normalised by the voxel count (Mumford-Shah) instead of each class's mass: its energy is
    lowest at the labels' boundary level, the reference's at the object's darkest voxels
    (benchmarks/regulariser_boundary.py)."""

    vm_normalise = "voxels"


class nnUNetTrainerPASeg_vmVoxels3(nnUNetTrainerPASeg_vmVoxels):
    """nnUNetTrainerPASeg_vmVoxels at weight 3: enough to hold the CRF's inward pull near the labels' level."""

    w_vm = 3.0


class nnUNetTrainerPASeg_vmUnlabelled3(nnUNetTrainerPASeg_vmVoxels3):
    """nnUNetTrainerPASeg_vmVoxels3 on the voxels the pseudo-labels do not call background (the objects' boxes):
    the midpoint between the object's and its local surround's means, without vmVoxels3's false positives far from
    the object (every dark voxel of the patch)."""

    vm_region = "unlabelled"


class nnUNetTrainerPASeg_vmUnlabelled10(nnUNetTrainerPASeg_vmUnlabelled3):
    """nnUNetTrainerPASeg_vmUnlabelled3 at weight 10 (its energy's level 0.45 against 0.43 at weight 3)."""

    w_vm = 10.0


class nnUNetTrainerPASeg_vmBand10(nnUNetTrainerPASeg_vmUnlabelled10):
    """nnUNetTrainerPASeg_vmUnlabelled10 on the unlabelled voxels within 2 voxels of the predicted foreground only:
    the same level (the labels'), but dark voxels of the box away from the prediction (sulcal CSF, which
    _vmUnlabelled10 taught the network to call ventricle) are no longer pulled in."""

    vm_region = "band"


class nnUNetTrainerPASeg_wCRF0p3(nnUNetTrainerPASeg):
    """The CRF at weight 0.3 instead of 1: its pull towards the image's edge (inside the labels' boundary) against the
    partial loss, whose models end outside it; no region term (those taught an intensity rule, above)."""

    w_crf = 0.3


class nnUNetTrainerPASeg_rampByQuarter(nnUNetTrainerPASeg):
    """The regularisers start when the pseudo-Dice reaches 0.5 or after a quarter of the epochs, whichever comes
    first: a schedule that cannot leave the method off (deep grey seed 1 never reached 0.5)."""

    ramp_start_latest_fraction = 0.25


class nnUNetTrainerPASeg_rampWhenFound(nnUNetTrainerPASeg):
    """The regularisers start once every class has been found (each class's pseudo-Dice above 0 in some epoch) and
    ramp up over a fifth of the epochs instead of a tenth: on a low-contrast multi-class target the mean pseudo-Dice
    can stay under 0.5 long after every class is found (deep grey), and a found but weak class needs the partial loss
    to keep leading for a while."""

    ramp_start_dice = 1e-6
    ramp_fraction = 0.2

    def ramp_gate_values(self) -> list[float]:
        # per epoch, the weakest class's best pseudo-Dice so far: a class found once stays found when a later
        # epoch's validation patches miss it (NaN: absent from the patches, not found yet)
        values, best = [], None
        for dice in self.logger.get_value("dice_per_class_or_region", step=None):
            best = np.asarray(dice, dtype=float) if best is None else np.fmax(best, dice)
            values.append(float(best.min()))
        return values


class nnUNetTrainerPASeg_wCRFFlat(nnUNetTrainerPASeg):
    """The CRF at weight w_crf whatever the number of foreground classes (the default until 2026-12-06, and the
    deep-grey PASeg runs before it): on deep grey it erases the putamen and the thalamus."""

    crf_weight_per_class = False


# ------------------------------------------------------------------------------ stage 2's teachers (issue 24)
class nnUNetTrainerSCM_pceAux(nnUNetTrainerSCM_crossKD):
    """nnUNetTrainerSCM_crossKD (SCM's default when screened) whose auxiliary network starts from
    nnUNetTrainerPASegAux_pCE (the partial loss alone): cross distillation between a primary that under-segments and
    an auxiliary that over-segments, so that each network's soft targets pull the other's
    boundary towards the labels' instead of self-training on stage 1's own boundary."""

    aux_stage1_trainer = "nnUNetTrainerPASegAux_pCE"


class nnUNetTrainerSCM_pceAuxEnsembleTarget(nnUNetTrainerSCM_pceAux):
    """nnUNetTrainerSCM_pceAux whose two networks both self-train on the hard label of the snapshots' mean softmax:
    the partial-loss network errs outside the labels and PASeg inside, and their ensemble's boundary lies between the
    two (docs/experiments.md), where cross distillation alone pushed the primary past the labels (SCM_pceAux)."""

    self_training_target = "ensemble"


class nnUNetTrainerSCM_pceAuxFrozenEnsemble(nnUNetTrainerSCM_pceAuxEnsembleTarget):
    """nnUNetTrainerSCM_pceAuxEnsembleTarget whose snapshots stay the stage-1 networks: both networks learn the
    stage-1 ensemble's label (PASeg + the partial-loss auxiliary, averaged), which is better than either stage-1
    network, and, unlike refreshed snapshots, a fixed teacher cannot follow the two networks as they converge to one
    boundary (with refreshed snapshots the partial-loss partner lost its recall: docs/experiments.md)."""

    teacher = "frozen"


class nnUNetTrainerSCM_pceAuxFrozenEnsembleNoCKD(nnUNetTrainerSCM_pceAuxFrozenEnsemble):
    """nnUNetTrainerSCM_pceAuxFrozenEnsemble without cross distillation: a frozen partial-loss teacher's soft targets
    pull the primary's boundary outward for the whole of stage 2 (docs/experiments.md), so here both networks learn
    the stage-1 ensemble's label alone. Promoted: nnUNetTrainerSCM's default since 2026-12-07 (which also skips
    training the auxiliary network, whose frozen snapshot alone reaches the primary)."""

    w_kd = 0.0


# ------------------------------------------------------------------------------ fixed budgets
class _Budget:
    """Mixin: the schedule from the environment; no final validation right after training."""

    # nnU-Net records a trainer's init arguments by the names of this signature: keep it nnU-Net's.
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = int(os.environ.get("PASEG_BUDGET_EPOCHS", "24"))
        self.num_iterations_per_epoch = int(os.environ.get("PASEG_BUDGET_ITERATIONS", "50"))
        self.num_val_iterations_per_epoch = max(1, self.num_iterations_per_epoch // 10)
        # nnU-Net keeps checkpoint_latest every 50 epochs; a CPU epoch takes minutes, so a run cut short (a session's
        # end) would lose most of its work: keep one every 4 epochs, which --c (the benchmark's resume) starts from.
        self.save_every = 4
        self.trained_in_this_run = False
        if self.device.type == "cpu" and os.environ.get("PASEG_TORCH_THREADS"):
            # nnUNetv2_train gives torch one thread per core; beside the data-augmentation workers on a small CPU
            # the threads then mostly wait for each other (measured ~10x slower per iteration on 2 shared cores).
            torch.set_num_threads(int(os.environ["PASEG_TORCH_THREADS"]))

    def on_train_end(self):
        super().on_train_end()
        self.trained_in_this_run = True

    def perform_actual_validation(self, save_probabilities: bool = False):
        if self.trained_in_this_run:
            self.print_to_log_file("final validation skipped (fixed-budget run; evaluated on the test set); "
                                   "nnUNetv2_train ... --val runs it")
            return
        super().perform_actual_validation(save_probabilities)


def budget_trainer(base: type) -> type:
    """``base`` on the fixed budget, named ``<base name>_budget``."""
    attributes = {"__doc__": f"{base.__name__} on the fixed budget of {__name__}.",
                  "__module__": __name__, "__qualname__": f"{base.__name__}_budget"}
    if issubclass(base, nnUNetTrainerSCM):
        attributes["primary_stage1_trainer"] = base.primary_stage1_trainer + "_budget"
        attributes["aux_stage1_trainer"] = base.aux_stage1_trainer + "_budget"
    return type(f"{base.__name__}_budget", (_Budget, base), attributes)


SCREENING = [nnUNetTrainerPASeg_voxelCRF, nnUNetTrainerPASeg_mmCRF, nnUNetTrainerPASeg_mmCRF10,
             nnUNetTrainerPASeg_mmCRF3, nnUNetTrainerPASeg_mmCRF_sigmaX0p2, nnUNetTrainerPASeg_cleanGuide,
             nnUNetTrainerPASeg_fullResWeights, nnUNetTrainerPASeg_allChanges, nnUNetTrainerPASeg_fullCRF,
             nnUNetTrainerPASegAux_presetDepth, nnUNetTrainerSCM_presetDepthAux,
             nnUNetTrainerSCM_presetDepthAuxEmaTeacher, nnUNetTrainerPASeg_vmVoxels, nnUNetTrainerPASeg_vmVoxels3,
             nnUNetTrainerPASeg_vmUnlabelled3, nnUNetTrainerPASeg_vmUnlabelled10, nnUNetTrainerPASeg_vmBand10,
             nnUNetTrainerPASeg_wCRF0p3, nnUNetTrainerPASeg_rampByQuarter, nnUNetTrainerPASeg_rampWhenFound,
             nnUNetTrainerPASeg_wCRFFlat,
             nnUNetTrainerSCM_pceAux,
             nnUNetTrainerSCM_pceAuxEnsembleTarget, nnUNetTrainerSCM_pceAuxFrozenEnsemble,
             nnUNetTrainerSCM_pceAuxFrozenEnsembleNoCKD]
# Module attributes: nnU-Net's look-up finds a class by name among a module's attributes.
BUDGET = {cls.__name__: cls for cls in map(budget_trainer, [nnUNetTrainer]
                                           + [getattr(product, name) for name in product.__all__] + SCREENING)}
globals().update(BUDGET)


def lab_trainer(name: str) -> type | None:
    """The class of a trainer name of the package or the lab (not ``_budget``), or None."""
    return getattr(product, name, None) if name in product.__all__ else \
        next((cls for cls in SCREENING if cls.__name__ == name), None)
