"""Stage 1 of PA-Seg: nnUNetTrainerPASeg (partial loss + gated CRF + variance minimisation) and its variants."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import autocast
from torch import distributed as dist

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, VarianceMinimizationLoss
from nnunetv2_paseg.trainers.checkpoints import checked_checkpoint, save_atomically
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


class nnUNetTrainerPASeg(nnUNetTrainer):
    """nnU-Net trainer for sparse (pseudo-)labels with an ``ignore`` label: stage 1 of PA-Seg (SPEC section 3).

    Loss per training step, with z the network's logits, p = softmax(z) at full resolution and x the augmented,
    normalised input patch of the same step:

        L = L_partial(z, y) + ramp(epoch) * (w_crf * L_mCRF(p, x) + w_vm * L_VM(p, x))

    L_partial is nnU-Net's own loss (Dice + CE that skips the ``ignore`` voxels, on all deep-supervision outputs).
    L_mCRF and L_VM see only the full-resolution output. The validation loss stays nnU-Net's (L_partial).

    Start of the ramp (a deviation from the reference, which ramps up from epoch 0): the regularisers stay off
    until the network predicts the labelled foreground, i.e. until nnU-Net's pseudo-Dice (foreground Dice on the
    labelled voxels of the validation patches, logged every epoch) first reaches ``ramp_start_dice``; the ramp
    runs from the next epoch on. Both regularisers are minimised by a confident constant prediction, and a network
    that has not yet found a small foreground is pushed there and stays (measured on the atlas cohort's
    ventricles with 12 x 30 iterations: every variant with the CRF on from epoch 0, even at w_crf = 0.1, predicted
    only background; see README). The start is derived from the logged pseudo-Dice, so ``--c``
    resumes it.

    Hyperparameters (set in ``__init__``; variants override them there, nnU-Net style):
        w_crf, w_vm: weights of the two regularisers (reference: 1.0, 0.1). 0 switches a term off.
        ramp_fraction: the sigmoid ramp-up spans this share of ``num_epochs`` (reference: 0.1).
        ramp_start_dice: pseudo-Dice that starts the ramp (default 0.5); None: ramp from epoch 0 (reference).
        crf_downsample: per spatial axis of the patch (nnU-Net's axis order, where the coarsest axis of anisotropic
            data comes first), the scale of the copy of p and x the CRF sees (area interpolation). The default
            (1, 0.5, 0.5) halves the two in-plane axes, the reference's 128x128x48 -> 64x64x48. None: full size.
        crf_radius, crf_sigma_xy, crf_sigma_intensity: the CRF kernel (reference: 5, 6.0 voxels, 0.1).

    Each part of the loss (``loss_parts``) and the ramp weight are logged per epoch (training log and the fourth
    panel of progress.png); a term that is switched off is logged as NaN. Subclasses that change the loss override
    ``compute_loss`` and ``loss_parts``.
    """

    loss_parts: tuple[str, ...] = ("partial", "crf", "vm")

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.w_crf = 1.0
        self.w_vm = 0.1
        self.ramp_fraction = 0.1
        self.ramp_start_dice: float | None = 0.5
        self.crf_downsample: tuple[float, float, float] | None = (1.0, 0.5, 0.5)
        self.crf_radius = 5
        self.crf_sigma_xy = 6.0
        self.crf_sigma_intensity = 0.1
        self.crf_loss = self.vm_loss = None  # -> _build_loss (after subclasses have set the hyperparameters)
        self.logger.local_logger = LossComponentsLogger([f"train_{part}" for part in self.loss_parts], ["ramp"])

    def _build_loss(self):
        if (self.w_crf or self.w_vm) and len(self.configuration_manager.patch_size) != 3:
            raise ValueError(f"{type(self).__name__}: the CRF and VM losses need 3D patches; configuration "
                             f"{self.configuration_name!r} has patch size {self.configuration_manager.patch_size}")
        if (self.w_crf or self.w_vm) and self.label_manager.has_regions:
            raise ValueError(f"{type(self).__name__}: the CRF and VM losses need mutually exclusive classes "
                             f"(softmax); this dataset.json defines regions")
        if self.crf_downsample is not None and len(self.crf_downsample) != 3:
            raise ValueError(f"{type(self).__name__}: crf_downsample must give 3 scales or be None, "
                             f"got {self.crf_downsample!r}")
        self.crf_loss = MultiViewGatedCRFLoss(self.crf_radius, self.crf_sigma_xy, self.crf_sigma_intensity)
        self.vm_loss = VarianceMinimizationLoss()
        return super()._build_loss()

    def ramp_weight(self, epoch: int) -> float:
        """Weight of the regularisers in ``epoch``: 0 before the ramp's start, then the sigmoid ramp-up.

        Derived from the epoch and the logged pseudo-Dice of the epochs before it, so ``--c`` resumes it.
        """
        start = ramp_start_epoch(list(self.logger.get_value("mean_fg_dice", step=None))[:epoch],
                                 self.ramp_start_dice)
        return 0.0 if start is None else sigmoid_rampup(epoch - start, self.ramp_fraction * self.num_epochs)

    def _num_image_channels(self) -> int:
        # As nnU-Net counts them (legacy 'modality' first); the cascade appends segmentation channels after these.
        return len(self.dataset_json["modality"] if "modality" in self.dataset_json
                   else self.dataset_json["channel_names"])

    def _crf_view(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.crf_downsample is None:
            return tensor
        size = [max(1, round(s * f)) for s, f in zip(tensor.shape[2:], self.crf_downsample)]
        return F.interpolate(tensor, size=size, mode="area")

    def compute_loss(self, output: torch.Tensor | list[torch.Tensor], target: torch.Tensor | list[torch.Tensor],
                     data: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The training loss of one step and its parts.

        Args:
            output: network output, a list (full resolution first) with deep supervision, else a tensor (N, C, ...).
            target: as nnU-Net's loss expects it (a list per deep-supervision scale, or a tensor).
            data: the network's input (N, K, ...); only the image channels (not cascade segmentations) are used.

        Returns:
            (total loss with gradient, {part name: detached scalar}), parts as in ``loss_parts`` (NaN when a term
            is switched off).
        """
        partial = self.loss(output, target)
        total = partial
        nan = torch.full((), float("nan"), device=partial.device)
        parts = {"partial": partial.detach(), "crf": nan, "vm": nan}
        if self.w_crf or self.w_vm:
            ramp = self.ramp_weight(self.current_epoch)
            terms = {}
            # Before the ramp starts the terms are only logged: no graph, no backward pass through them.
            with torch.no_grad() if ramp == 0.0 else dummy_context():
                logits = output[0] if isinstance(output, (list, tuple)) else output
                probs = torch.softmax(logits.float(), 1)
                image = data[:, :self._num_image_channels()]
                if self.w_crf:
                    terms["crf"] = self.w_crf, self.crf_loss(self._crf_view(probs), self._crf_view(image))
                if self.w_vm:
                    terms["vm"] = self.w_vm, self.vm_loss(probs, image)
            for part, (weight, value) in terms.items():
                total = total + ramp * weight * value
                parts[part] = value.detach()
        return total, parts

    def train_step(self, batch: dict) -> dict:
        # nnUNetTrainer.train_step with compute_loss in place of self.loss (same AMP, scaling, clipping).
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        if isinstance(target, list):
            target = [i.to(self.device, non_blocking=True) for i in target]
        else:
            target = target.to(self.device, non_blocking=True)

        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context():
            output = self.network(data)
            loss, parts = self.compute_loss(output, target, data)

        if self.grad_scaler is not None:
            self.grad_scaler.scale(loss).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12)
            self.optimizer.step()
        return {"loss": loss.detach().cpu().numpy(), **{k: v.cpu().numpy() for k, v in parts.items()}}

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        outputs = collate_outputs(train_outputs)
        means = mean_over_ranks({part: outputs[part] for part in self.loss_parts})
        ramp = self.ramp_weight(self.current_epoch)
        for part, value in means.items():
            self.logger.log(f"train_{part}", value, self.current_epoch)
        self.logger.log("ramp", ramp, self.current_epoch)
        waiting = (f"; off until the pseudo Dice reaches {self.ramp_start_dice}"
                   if (self.w_crf or self.w_vm) and ramp == 0.0 else "")
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
    """The CRF on the full-size patch (more memory and time than the default half in-plane size)."""

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.crf_downsample = None


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
