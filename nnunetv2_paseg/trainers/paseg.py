"""Stage 1 of PA-Seg: nnUNetTrainerPASeg (partial loss + gated CRF + variance minimisation) and its variants."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import autocast
from torch import distributed as dist

from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from nnunetv2.training.loss.deep_supervision import DeepSupervisionWrapper
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, VarianceMinimizationLoss
from nnunetv2_paseg.trainers.checkpoints import checked_checkpoint, save_atomically
from nnunetv2_paseg.trainers.guide import with_guide_channel
from nnunetv2_paseg.trainers.optim import optimizer_step
from nnunetv2_paseg.trainers.progress_logger import LossComponentsLogger


def sigmoid_rampup(epoch: float, ramp_epochs: float) -> float:
    """Sigmoid ramp-up ``exp(-5 (1 - t)^2)`` with ``t = epoch / ramp_epochs`` clipped to [0, 1].

    Rises from exp(-5) ~ 0.0067 at epoch 0 to 1 at ``ramp_epochs`` and stays at 1; 1 throughout when
    ``ramp_epochs <= 0``.
    """
    if ramp_epochs <= 0:
        return 1.0
    t = min(max(epoch / ramp_epochs, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def ramp_start_epoch(pseudo_dice: Sequence[float], threshold: float | None) -> int | None:
    """First epoch of the regularisers' ramp-up, from the pseudo-Dice of the epochs so far.

    0 when ``threshold`` is None (the reference: from the first epoch). Otherwise the epoch after the first one whose
    pseudo-Dice (NaN counts as not reached) was >= ``threshold``, and None while no epoch has reached it.
    """
    if threshold is None:
        return 0
    reached = next((epoch for epoch, dice in enumerate(pseudo_dice) if dice >= threshold), None)
    return None if reached is None else reached + 1


def mean_over_ranks(values: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each entry over this process's training steps and, under DDP, over every rank's steps.

    Each DDP rank computes its losses on its own batches; like nnU-Net's ``train_losses``, the logged value is the
    mean over all ranks (``all_gather_object``; every rank must call this).
    """
    if dist.is_available() and dist.is_initialized():
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, values)
        values = {key: np.vstack([g[key] for g in gathered]) for key in values}
    return {key: float(np.mean(v)) for key, v in values.items()}


@dataclass(frozen=True)
class Regulariser:
    """One regularisation term of nnUNetTrainerPASeg: ``weight * loss(probs, guide)``, logged as ``train_<name>``.

    ``loss`` takes the softmax of the full-resolution output (N, C, X, Y, Z) and the guide image (N, 1, X, Y, Z) and
    returns a scalar.
    """

    name: str
    weight: float
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def crf_grid_scales(spacing: Sequence[float], min_spacing_mm: float) -> tuple[float, ...]:
    """Per spatial axis, the scale of the CRF's copy of a patch: an axis whose voxels are finer than
    ``min_spacing_mm`` is resampled to about that spacing (scale spacing / min_spacing_mm), the others are kept.

    E.g. vestibular schwannoma MR at 0.45 x 0.45 x 1.5 mm with 1 mm: (0.45, 0.45, 1), the reference's in-plane halving;
    isotropic 2 mm data: (1, 1, 1).
    """
    return tuple(min(1.0, s / min_spacing_mm) for s in spacing)


class nnUNetTrainerPASeg(nnUNetTrainer):
    """nnU-Net trainer for sparse (pseudo-)labels with an ``ignore`` label: stage 1 of PA-Seg (Zhai et al., IEEE TMI
    2023, arXiv 2208.05669).

    Loss per training step, with z the network's logits, p = softmax(z) at full resolution and g the guide image of
    the same patch (the paper's stage-1 loss: a partial loss on the labelled voxels plus the multi-view CRF and
    variance minimisation regularisers, whose formulas ``MultiViewGatedCRFLoss`` and ``VarianceMinimizationLoss``
    state):

        L = L_partial(z, y) + ramp(epoch) * s * sum over regularisers r of  w_r * L_r(p, g)

    L_partial is nnU-Net's own loss (Dice + CE that skips the ``ignore`` voxels, on all deep-supervision outputs),
    and the regularisers (``build_regularisers``: L_mCRF with ``w_crf``, L_VM with ``w_vm``) see only the
    full-resolution output. ``s`` is 1, or with ``regularisers_relative_to_full_res`` the deep-supervision weight of
    the full-resolution output (so that the regularisers stand to that output's partial loss as in the reference,
    which had one output). The validation loss stays nnU-Net's (L_partial).

    Guide image: the augmented network input (channels averaged), or with ``clean_guide`` the patch after nnU-Net's
    spatial augmentation and before its intensity augmentation (``guide.with_guide_channel``; the reference
    augmented with flips only).

    Start of the ramp (a deviation from the reference, which ramps up from epoch 0): the regularisers stay off
    until the network predicts the labelled foreground, i.e. until nnU-Net's pseudo-Dice (foreground Dice on the
    labelled voxels of the validation patches, logged every epoch) first reaches ``ramp_start_dice``; the ramp
    runs from the next epoch on. Both regularisers are minimised by a confident constant prediction, and a network
    that has not yet found a small foreground is pushed there and stays (measured on the atlas cohort's
    ventricles: every variant with the CRF on from epoch 0 predicted only background; docs/experiments.md).
    The start is derived from the logged pseudo-Dice, so ``--c`` resumes it.

    Hyperparameters (set in ``__init__``; variants override them there, nnU-Net style):
        w_crf, w_vm: weights of the two regularisers (reference: 1.0, 0.1). 0 switches a term off.
        ramp_fraction: the sigmoid ramp-up spans this share of ``num_epochs`` (reference: 0.1).
        ramp_start_dice: pseudo-Dice that starts the ramp (default 0.5); None: ramp from epoch 0 (reference).
        crf_grid_mm: the CRF sees a copy of p and g on which axes finer than this many mm are resampled to about it
            (``crf_grid_scales``, area interpolation; default 1.0); None: ``crf_downsample`` decides.
        crf_downsample: with ``crf_grid_mm`` None, the fixed per-axis scale of that copy (nnU-Net's axis order,
            where the coarsest axis of anisotropic data comes first); (1, 0.5, 0.5) is the reference's in-plane
            halving of 128x128x48 patches. None (default): full size.
        crf_radius, crf_sigma_intensity: window radius (voxels of the CRF's grid) and sigma_x (reference: 5, 0.1).
        crf_sigma_xy_mm: the kernel's spatial sigma in mm (positions scaled by the CRF grid's spacing; default 5.0);
            None: ``crf_sigma_xy`` voxels.
        crf_sigma_xy: with ``crf_sigma_xy_mm`` None, the spatial sigma in voxels of the CRF grid (reference: 6).
        clean_guide, regularisers_relative_to_full_res: see above.

    Each part of the loss and the ramp weight are logged per epoch (training log and the fourth panel of
    progress.png).
    """

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.w_crf = 1.0
        self.w_vm = 0.1
        self.ramp_fraction = 0.1
        self.ramp_start_dice: float | None = 0.5
        # The kernel in mm on a grid of about 1 mm (a deviation: the reference's 6 voxels were 5-6 mm on its
        # vestibular schwannoma grid); chosen on validation cohorts over the first release's 6 voxels on an
        # in-plane-halved copy (+0.036 Dice, docs/experiments.md).
        self.crf_grid_mm: float | None = 1.0
        self.crf_downsample: tuple[float, float, float] | None = None
        self.crf_radius = 5
        self.crf_sigma_xy_mm: float | None = 5.0
        self.crf_sigma_xy = 6.0
        self.crf_sigma_intensity = 0.1
        self.clean_guide = False
        self.regularisers_relative_to_full_res = False
        self.regularisers: list[Regulariser] = []  # -> initialize (after subclasses have set the hyperparameters)
        self.crf_loss = self.vm_loss = None

    def initialize(self):
        super().initialize()
        self.regularisers = self.build_regularisers()
        parts = ["train_partial"] + [f"train_{term.name}" for term in self.regularisers]
        self.logger.local_logger = LossComponentsLogger(parts, ["ramp"])

    def build_regularisers(self) -> list[Regulariser]:
        """The regularisation terms, in the order they are logged; a variant adds one by extending this list."""
        if (self.w_crf or self.w_vm) and len(self.configuration_manager.patch_size) != 3:
            raise ValueError(f"{type(self).__name__}: the CRF and VM losses need 3D patches; configuration "
                             f"{self.configuration_name!r} has patch size {self.configuration_manager.patch_size}")
        if (self.w_crf or self.w_vm) and self.label_manager.has_regions:
            raise ValueError(f"{type(self).__name__}: the CRF and VM losses need mutually exclusive classes "
                             f"(softmax); this dataset.json defines regions")
        terms = []
        if self.w_crf:
            scales = self.crf_scales()
            grid_spacing = [s / f for s, f in zip(self.configuration_manager.spacing, scales)]
            sigma_xy = self.crf_sigma_xy if self.crf_sigma_xy_mm is None else self.crf_sigma_xy_mm
            self.crf_loss = MultiViewGatedCRFLoss(self.crf_radius, sigma_xy, self.crf_sigma_intensity,
                                                  spacing=None if self.crf_sigma_xy_mm is None else grid_spacing)
            self.print_to_log_file(f"gated CRF on a copy scaled by {tuple(round(f, 3) for f in scales)} "
                                   f"(voxels of {tuple(round(s, 3) for s in grid_spacing)} mm): {self.crf_loss}")
            terms.append(Regulariser("crf", self.w_crf, lambda p, g: self.crf_loss(self._crf_view(p),
                                                                                    self._crf_view(g))))
        if self.w_vm:
            self.vm_loss = VarianceMinimizationLoss()
            terms.append(Regulariser("vm", self.w_vm, self.vm_loss))
        return terms

    def crf_scales(self) -> tuple[float, ...]:
        """Per spatial axis, the scale of the copy of the patch that the CRF sees."""
        if self.crf_grid_mm is not None:
            return crf_grid_scales(self.configuration_manager.spacing, self.crf_grid_mm)
        if self.crf_downsample is None:
            return (1.0,) * len(self.configuration_manager.patch_size)
        if len(self.crf_downsample) != 3:
            raise ValueError(f"{type(self).__name__}: crf_downsample must give 3 scales or be None, "
                             f"got {self.crf_downsample!r}")
        return tuple(self.crf_downsample)

    def _crf_view(self, tensor: torch.Tensor) -> torch.Tensor:
        scales = self.crf_scales()
        if all(f == 1.0 for f in scales):
            return tensor
        size = [max(1, round(s * f)) for s, f in zip(tensor.shape[2:], scales)]
        return F.interpolate(tensor, size=size, mode="area")

    def ramp_weight(self, epoch: int) -> float:
        """Weight of the regularisers in ``epoch``: 0 before the ramp's start, then the sigmoid ramp-up.

        Derived from the epoch and the logged pseudo-Dice of the epochs before it, so ``--c`` resumes it. 0 when the
        trainer has no regularisers.
        """
        if not self.regularisers:
            return 0.0
        start = ramp_start_epoch(list(self.logger.get_value("mean_fg_dice", step=None))[:epoch],
                                 self.ramp_start_dice)
        return 0.0 if start is None else sigmoid_rampup(epoch - start, self.ramp_fraction * self.num_epochs)

    def regulariser_scale(self) -> float:
        """``s`` of the loss: the full-resolution output's deep-supervision weight, or 1."""
        if self.regularisers_relative_to_full_res and isinstance(self.loss, DeepSupervisionWrapper):
            return float(self.loss.weight_factors[0])
        return 1.0

    def _num_image_channels(self) -> int:
        # As nnU-Net counts them (legacy 'modality' first); the cascade appends segmentation channels after these.
        return len(self.dataset_json["modality"] if "modality" in self.dataset_json
                   else self.dataset_json["channel_names"])

    @property
    def guide_in_batch(self) -> bool:
        """Whether training batches carry the clean guide as their last channel (``clean_guide``; not with the
        cascade, whose segmentation channels follow the image's)."""
        return self.clean_guide and bool(self.w_crf or self.w_vm) and not self.is_cascaded

    def get_training_transforms(self, *args, **kwargs) -> BasicTransform:
        # nnU-Net declares this a staticmethod but calls it through the instance (get_dataloaders).
        pipeline = super().get_training_transforms(*args, **kwargs)
        if self.guide_in_batch:
            pipeline = with_guide_channel(pipeline, self._num_image_channels())
        return pipeline

    def split_batch(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input, guide (N, 1, ...)) of a training batch: the guide is the batch's last channel with
        ``clean_guide``, else the mean of the input's image channels."""
        expected = self.num_input_channels + int(self.guide_in_batch)
        if data.shape[1] != expected:
            raise ValueError(f"{type(self).__name__}: training batch has {data.shape[1]} channels, expected {expected} "
                             f"({self.num_input_channels} network inputs"
                             f"{' + the guide' if self.guide_in_batch else ''})")
        if self.guide_in_batch:
            return data[:, :-1], data[:, -1:]
        return data, data[:, :self._num_image_channels()].mean(1, keepdim=True)

    def compute_loss(self, output: torch.Tensor | list[torch.Tensor], target: torch.Tensor | list[torch.Tensor],
                     guide: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of one step and its parts.

        Args:
            output: network output, a list (full resolution first) with deep supervision, else a tensor (N, C, ...).
            target: as nnU-Net's loss expects it (a list per deep-supervision scale, or a tensor).
            guide: (N, 1, ...) the guide image of the regularisers (``split_batch``).

        Returns:
            (total loss with gradient, {"partial" or a regulariser's name: detached scalar}).
        """
        partial = self.loss(output, target)
        total = partial
        parts = {"partial": partial.detach()}
        if not self.regularisers:
            return total, parts
        ramp = self.ramp_weight(self.current_epoch)
        scale = ramp * self.regulariser_scale()
        # Before the ramp starts the terms are only logged: no graph, no backward pass through them.
        with torch.no_grad() if ramp == 0.0 else dummy_context():
            logits = output[0] if isinstance(output, (list, tuple)) else output
            probs = torch.softmax(logits.float(), 1)
            values = {term.name: (term.weight, term.loss(probs, guide)) for term in self.regularisers}
        for name, (weight, value) in values.items():
            total = total + scale * weight * value
            parts[name] = value.detach()
        return total, parts

    def train_step(self, batch: dict) -> dict:
        # nnUNetTrainer.train_step with compute_loss in place of self.loss (same AMP, scaling, clipping).
        data, guide = self.split_batch(batch["data"].to(self.device, non_blocking=True))
        target = batch["target"]
        if isinstance(target, list):
            target = [i.to(self.device, non_blocking=True) for i in target]
        else:
            target = target.to(self.device, non_blocking=True)

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(data)
            loss, parts = self.compute_loss(output, target, guide)
        optimizer_step(loss, self.network, self.optimizer, self.grad_scaler)
        return {"loss": loss.detach().cpu().numpy(), **{k: v.cpu().numpy() for k, v in parts.items()}}

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        outputs = collate_outputs(train_outputs)
        parts = ["partial"] + [term.name for term in self.regularisers]
        means = mean_over_ranks({part: outputs[part] for part in parts})
        ramp = self.ramp_weight(self.current_epoch)
        for part, value in means.items():
            self.logger.log(f"train_{part}", value, self.current_epoch)
        self.logger.log("ramp", ramp, self.current_epoch)
        waiting = (f"; off until the pseudo Dice reaches {self.ramp_start_dice}"
                   if self.regularisers and ramp == 0.0 else "")
        self.print_to_log_file(", ".join(f"train_{part} {value:.4f}" for part, value in means.items()),
                               f"(ramp weight {ramp:.4f}{waiting})")

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        """nnU-Net's, but a file that cannot be read (cut short, not a checkpoint) or does not fit this run's network
        is a CheckpointError naming it and what differs (``checkpoints.checked_checkpoint``). ``--c`` without any
        checkpoint stays nnU-Net's: a warning, then a fresh start."""
        checked_checkpoint(self, filename_or_checkpoint)
        # the original argument: nnU-Net's load_checkpoint (2.8) cannot take the dict it is given
        super().load_checkpoint(filename_or_checkpoint)

    def save_checkpoint(self, filename: str) -> None:
        # through a temporary name: a run killed while saving keeps its previous checkpoint, not a truncated one
        save_atomically(super().save_checkpoint, filename)


class nnUNetTrainerPASeg_rampFromStart(nnUNetTrainerPASeg):
    """The reference's schedule: the regularisers ramp up from epoch 0, whatever the network predicts yet."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.ramp_start_dice = None


class nnUNetTrainerPASeg_pCE(nnUNetTrainerPASeg):
    """Partial loss only: the baseline of the ablation."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.w_crf = 0.0
        self.w_vm = 0.0


class nnUNetTrainerPASeg_noCRF(nnUNetTrainerPASeg):
    """Partial loss + variance minimisation (no gated CRF)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.w_crf = 0.0


class nnUNetTrainerPASeg_noVM(nnUNetTrainerPASeg):
    """Partial loss + gated CRF (no variance minimisation)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.w_vm = 0.0


class nnUNetTrainerPASeg_fullCRF(nnUNetTrainerPASeg):
    """The CRF on the full-size patch, whatever its spacing (more memory and time on fine grids)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_grid_mm = None
        self.crf_downsample = None


class nnUNetTrainerPASeg_voxelCRF(nnUNetTrainerPASeg):
    """The settings of the first release, which took the reference's CRF numbers literally: kernel of 6 voxels on a
    copy halved in-plane whatever the spacing, the augmented network input as the guide, and regulariser weights
    relative to the partial loss summed over all deep-supervision outputs. The screening variants below each change
    one of these (docs/experiments.md)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_grid_mm = None
        self.crf_downsample = (1.0, 0.5, 0.5)
        self.crf_sigma_xy_mm = None
        self.crf_sigma_xy = 6.0
        self.clean_guide = False
        self.regularisers_relative_to_full_res = False


class nnUNetTrainerPASeg_mmCRF(nnUNetTrainerPASeg_voxelCRF):
    """_voxelCRF with the CRF kernel in millimetres: sigma_xy = 5 mm (the reference's 6 voxels were about 5-6 mm on
    its vestibular schwannoma grid, 12 mm on BraTS), on a grid that resamples only axes finer than 1 mm. The
    screening's winner, promoted to the default; kept under this name so that its runs stay reproducible."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_grid_mm = 1.0
        self.crf_sigma_xy_mm = 5.0


class nnUNetTrainerPASeg_mmCRF10(nnUNetTrainerPASeg_mmCRF):
    """_mmCRF with sigma_xy = 10 mm (about the reference's BraTS scale)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_sigma_xy_mm = 10.0


class nnUNetTrainerPASeg_mmCRF3(nnUNetTrainerPASeg_mmCRF):
    """_mmCRF with sigma_xy = 3 mm: a kernel for structures a few voxels thick (the screening's recall rose from 0.60
    to 0.67 when the kernel shrank from ~24 mm to 5 mm)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_sigma_xy_mm = 3.0


class nnUNetTrainerPASeg_mmCRF_sigmaX0p2(nnUNetTrainerPASeg_mmCRF):
    """_mmCRF with twice the intensity bandwidth, sigma_x = 0.2: partial-volume voxels at a structure's edge stay
    coupled to its inside."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_sigma_intensity = 0.2


class nnUNetTrainerPASeg_cleanGuide(nnUNetTrainerPASeg_voxelCRF):
    """_voxelCRF whose regularisers see the patch before nnU-Net's intensity augmentation (``guide``)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.clean_guide = True


class nnUNetTrainerPASeg_fullResWeights(nnUNetTrainerPASeg_voxelCRF):
    """_voxelCRF with the regulariser weights relative to the full-resolution output's partial loss (reference)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.regularisers_relative_to_full_res = True


class nnUNetTrainerPASeg_allChanges(nnUNetTrainerPASeg_mmCRF):
    """_voxelCRF with all three changes: mm kernel (5 mm), clean guide, full-resolution weights."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.clean_guide = True
        self.regularisers_relative_to_full_res = True


class nnUNetTrainerPASeg_50epochs(nnUNetTrainerPASeg):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 50


class nnUNetTrainerPASeg_100epochs(nnUNetTrainerPASeg):
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 100


class nnUNetTrainerPASeg_300epochs(nnUNetTrainerPASeg):
    """The reference's schedule length (300 epochs, ramp-up over the first 30)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = 300
