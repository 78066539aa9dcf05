"""Stage 1 of PA-Seg: nnUNetTrainerPASeg (partial loss + gated CRF + variance minimisation)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, VarianceMinimizationLoss
from nnunetv2_paseg.losses.regularised import RegularisedLoss, Regulariser
from nnunetv2_paseg.trainers.checkpoints import SafeCheckpoints
from nnunetv2_paseg.trainers.progress_logger import LossComponentsLogger, mean_over_ranks


def sigmoid_rampup(epoch: float, ramp_epochs: float) -> float:
    """Sigmoid ramp-up ``exp(-5 (1 - t)^2)`` with ``t = epoch / ramp_epochs`` clipped to [0, 1].

    Rises from exp(-5) ~ 0.0067 at epoch 0 to 1 at ``ramp_epochs`` and stays at 1; 1 throughout when
    ``ramp_epochs <= 0``.
    """
    if ramp_epochs <= 0:
        return 1.0
    t = min(max(epoch / ramp_epochs, 0.0), 1.0)
    return math.exp(-5.0 * (1.0 - t) ** 2)


def ramp_start_epoch(pseudo_dice: Sequence[float], threshold: float | None, latest: int | None = None) -> int | None:
    """First epoch of the regularisers' ramp-up, from the pseudo-Dice of the epochs so far.

    0 when ``threshold`` is None (the reference: from the first epoch). Otherwise the epoch after the first one whose
    pseudo-Dice (NaN counts as not reached) was >= ``threshold``, and None while no epoch has reached it; with
    ``latest``, epoch ``latest`` at the latest, once that many epochs have passed (a ramp that cannot stay off).
    """
    if threshold is None:
        return 0
    reached = next((epoch for epoch, dice in enumerate(pseudo_dice) if dice >= threshold), None)
    start = None if reached is None else reached + 1
    if latest is not None and len(pseudo_dice) >= latest:
        start = latest if start is None else min(start, latest)
    return start


def near_prediction(probs: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, 1, X, Y, Z) bool: the voxels within ``radius`` voxels (a cube) of the predicted foreground of ``probs``
    (N, C, X, Y, Z), i.e. where the foreground classes together have probability > 0.5; no gradient.

    Example:
        >>> probs = torch.zeros(1, 2, 7, 7, 7); probs[:, 0] = 1; probs[0, :, 3, 3, 3] = torch.tensor([0.0, 1.0])
        >>> int(near_prediction(probs, 1).sum())
        27
    """
    foreground = (probs.detach()[:, 1:].sum(1, keepdim=True) > 0.5).float()
    return F.max_pool3d(foreground, 2 * radius + 1, stride=1, padding=radius) > 0


def crf_weight(w_crf: float, num_foreground_classes: int, per_class: bool = True) -> float:
    """The gated CRF's weight in the stage-1 loss: ``w_crf`` divided by the number of foreground classes (``w_crf``
    itself with ``per_class=False``, the flat weight).

    nnU-Net's partial loss averages its Dice over the foreground classes, so what it charges for erasing one class
    falls with their number, while the CRF's reward for erasing a structure (the cut pairs along its surface) does
    not; with one weight for any number of classes, a low-contrast structure among several is cheaper erased than
    kept (``benchmarks/regulariser_erasure.py``; docs/experiments.md). One foreground class (both of the reference's
    datasets): ``w_crf`` itself.

    Example:
        >>> crf_weight(1.0, 1), crf_weight(1.0, 4)
        (1.0, 0.25)
    """
    if num_foreground_classes < 1:
        raise ValueError(f"crf_weight: the dataset needs a foreground class, got {num_foreground_classes}")
    return w_crf / num_foreground_classes if per_class else w_crf


def crf_grid_scales(spacing: Sequence[float], min_spacing_mm: float) -> tuple[float, ...]:
    """Per spatial axis, the scale of the CRF's copy of a patch: an axis whose voxels are finer than
    ``min_spacing_mm`` is resampled to about that spacing (scale spacing / min_spacing_mm), the others are kept.

    E.g. vestibular schwannoma MR at 0.45 x 0.45 x 1.5 mm with 1 mm: (0.45, 0.45, 1), the reference's in-plane halving;
    isotropic 2 mm data: (1, 1, 1).
    """
    return tuple(min(1.0, s / min_spacing_mm) for s in spacing)


class nnUNetTrainerPASeg(SafeCheckpoints, nnUNetTrainer):
    """nnU-Net trainer for sparse (pseudo-)labels with an ``ignore`` label: stage 1 of PA-Seg (Zhai et al., IEEE TMI
    2023, arXiv 2208.05669).

    Loss per training step (``RegularisedLoss``, built by ``_build_loss``), with z the network's logits, p =
    softmax(z) at full resolution and g the guide image of the same patch (the paper's stage-1 loss: a partial loss
    on the labelled voxels plus the multi-view CRF and variance minimisation regularisers, whose formulas
    ``MultiViewGatedCRFLoss`` and ``VarianceMinimizationLoss`` state):

        L = L_partial(z, y) + ramp(epoch) * sum over regularisers r of  w_r * L_r(p, g)

    L_partial is nnU-Net's own loss (Dice + CE that skips the ``ignore`` voxels, on all deep-supervision outputs),
    and the regularisers (``build_regularisers``: L_mCRF with ``crf_weight``, L_VM with ``w_vm``) see only the
    full-resolution output. The validation loss stays nnU-Net's (L_partial). Training steps are nnU-Net's own
    ``train_step``: the network hands its training input to the loss as the guide (channels averaged;
    ``split_batch``).

    Start of the ramp (a deviation from the reference, which ramps up from epoch 0): the regularisers stay off
    until the network predicts the labelled foreground, i.e. until nnU-Net's pseudo-Dice (foreground Dice on the
    labelled voxels of the validation patches, logged every epoch; the mean over the foreground classes, or what a
    variant's ``ramp_gate_values`` returns) first reaches ``ramp_start_dice``; the ramp runs from the next epoch on.
    Both regularisers are minimised by a confident constant prediction, and a network that has not yet found a small
    foreground is pushed there and stays (measured on the atlas cohort's ventricles: every variant with the CRF on
    from epoch 0 predicted only background; docs/experiments.md).
    The start is derived from the logged pseudo-Dice, so ``--c`` resumes it.

    Hyperparameters (class attributes; a variant overrides them in its class body):
        w_crf, w_vm: weights of the two regularisers (reference: 1.0, 0.1). 0 switches a term off. With K > 1
            foreground classes the CRF's weight is w_crf / K (``crf_weight``; a deviation: the reference's datasets
            had one class); ``crf_weight_per_class = False`` keeps w_crf for any K.
        vm_normalise: ``VarianceMinimizationLoss``'s normalise ("class": the reference's per-class variance).
        vm_region: the voxels VM sums over: "patch" (the reference: all) or "unlabelled" (those the partial labels
            do not call background, i.e. the objects' boxes: means of the object and its local surround) or "band"
            (those of the unlabelled voxels within ``vm_band_voxels`` of the predicted foreground: the object and a
            ring around it, so that no voxel far from the prediction is pulled in).
        ramp_fraction: the sigmoid ramp-up spans this share of ``num_epochs`` (reference: 0.1).
        ramp_start_dice: pseudo-Dice that starts the ramp (default 0.5); None: ramp from epoch 0 (reference).
        ramp_start_latest_fraction: with ramp_start_dice, the ramp starts after this share of ``num_epochs`` at the
            latest, whatever the pseudo-Dice (default None: no deadline).
        crf_grid_mm: the CRF sees a copy of p and g on which axes finer than this many mm are resampled to about it
            (``crf_grid_scales``, area interpolation; default 1.0); None: the full-size patch.
        crf_radius, crf_sigma_intensity: window radius (voxels of the CRF's grid) and sigma_x (reference: 5, 0.1).
        crf_sigma_xy_mm: the kernel's spatial sigma in mm of the CRF's grid (default 5.0; the reference's 6 voxels
            were about 5-6 mm on its vestibular schwannoma grid).

    Each part of the loss and the ramp weight are logged per epoch (training log and ``loss_components.png``).
    """

    w_crf = 1.0
    w_vm = 0.1
    crf_weight_per_class = True
    vm_normalise = "class"
    vm_region = "patch"
    vm_band_voxels = 2
    ramp_fraction = 0.1
    ramp_start_dice: float | None = 0.5
    ramp_start_latest_fraction: float | None = None
    # The kernel in mm on a grid of about 1 mm (a deviation: the reference's 6 voxels were 5-6 mm on its vestibular
    # schwannoma grid); chosen on validation cohorts over the first release's 6 voxels on an in-plane-halved copy
    # (+0.036 Dice, docs/experiments.md).
    crf_grid_mm: float | None = 1.0
    crf_radius = 5
    crf_sigma_xy_mm = 5.0
    crf_sigma_intensity = 0.1

    def initialize(self):
        super().initialize()
        # nnU-Net's train_step calls loss(output, target): the guide reaches the loss from the network's input.
        self.network.register_forward_pre_hook(self._hand_guide_to_loss)
        parts = ["train_partial"] + [f"train_{term.name}" for term in self.loss.regularisers]
        self.logger.local_logger = LossComponentsLogger(parts, ["ramp"])

    def _build_loss(self) -> RegularisedLoss:
        return RegularisedLoss(super()._build_loss(), self.build_regularisers())

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
            crf = self.build_crf_loss()
            classes = len(self.label_manager.foreground_labels)
            weight = crf_weight(self.w_crf, classes, self.crf_weight_per_class)
            self.print_to_log_file(f"CRF weight {weight:.4g} (w_crf {self.w_crf}, {classes} foreground classes, "
                                   f"crf_weight_per_class {self.crf_weight_per_class})")
            terms.append(Regulariser("crf", weight, lambda p, g: crf(self._crf_view(p), self._crf_view(g))))
        if self.w_vm:
            vm = VarianceMinimizationLoss(normalise=self.vm_normalise)
            if self.vm_region == "patch":
                terms.append(Regulariser("vm", self.w_vm, vm))
            elif self.vm_region == "unlabelled":
                terms.append(Regulariser("vm", self.w_vm, lambda p, g, y: vm(p, g, y != 0), needs_labels=True))
            elif self.vm_region == "band":
                radius = self.vm_band_voxels
                terms.append(Regulariser("vm", self.w_vm,
                                         lambda p, g, y: vm(p, g, (y != 0) & near_prediction(p, radius)),
                                         needs_labels=True))
            else:
                raise ValueError(f"{type(self).__name__}: vm_region must be 'patch', 'unlabelled' or 'band', got "
                                 f"{self.vm_region!r}")
        return terms

    def build_crf_loss(self) -> MultiViewGatedCRFLoss:
        """The gated CRF on the copy of the patch that ``crf_scales`` makes, its kernel in mm of that copy."""
        scales = self.crf_scales()
        grid_spacing = [s / f for s, f in zip(self.configuration_manager.spacing, scales)]
        crf = MultiViewGatedCRFLoss(self.crf_radius, self.crf_sigma_xy_mm, self.crf_sigma_intensity,
                                    spacing=grid_spacing)
        self.print_to_log_file(f"gated CRF on a copy scaled by {tuple(round(f, 3) for f in scales)} "
                               f"(voxels of {tuple(round(s, 3) for s in grid_spacing)} mm): {crf}")
        return crf

    def crf_scales(self) -> tuple[float, ...]:
        """Per spatial axis, the scale of the copy of the patch that the CRF sees."""
        if self.crf_grid_mm is None:
            return (1.0,) * len(self.configuration_manager.patch_size)
        return crf_grid_scales(self.configuration_manager.spacing, self.crf_grid_mm)

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
        if not self.loss.regularisers:
            return 0.0
        latest = None if self.ramp_start_latest_fraction is None else \
            round(self.ramp_start_latest_fraction * self.num_epochs)
        start = ramp_start_epoch(self.ramp_gate_values()[:epoch], self.ramp_start_dice, latest)
        return 0.0 if start is None else sigmoid_rampup(epoch - start, self.ramp_fraction * self.num_epochs)

    def ramp_gate_values(self) -> list[float]:
        """The per-epoch pseudo-Dice that ``ramp_start_dice`` gates: the mean over the foreground classes."""
        return list(self.logger.get_value("mean_fg_dice", step=None))

    def _num_image_channels(self) -> int:
        # As nnU-Net counts them (legacy 'modality' first); the cascade appends segmentation channels after these.
        return len(self.dataset_json["modality"] if "modality" in self.dataset_json
                   else self.dataset_json["channel_names"])

    def split_batch(self, data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(network input, guide (N, 1, ...)) of a training batch: the batch itself, and the mean of its image
        channels."""
        return data, data[:, :self._num_image_channels()].mean(1, keepdim=True)

    def _hand_guide_to_loss(self, network: nn.Module, args: tuple) -> tuple | None:
        # Training forward passes only: validation and prediction see the network as nnU-Net built it.
        if not network.training:
            return None
        data, self.loss.guide = self.split_batch(args[0])
        return None if data is args[0] else (data, *args[1:])

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self.loss.weight = self.ramp_weight(self.current_epoch)

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        steps, self.loss.parts = self.loss.parts, []
        names = ["partial"] + [term.name for term in self.loss.regularisers]
        means = mean_over_ranks({name: torch.stack([step[name] for step in steps]).float().cpu().numpy()
                                 for name in names})
        ramp = self.ramp_weight(self.current_epoch)
        for name, value in means.items():
            self.logger.log(f"train_{name}", value, self.current_epoch)
        self.logger.log("ramp", ramp, self.current_epoch)
        waiting = (f"; off until the pseudo Dice reaches {self.ramp_start_dice}"
                   if self.loss.regularisers and ramp == 0.0 else "")
        self.print_to_log_file(", ".join(f"train_{name} {value:.4f}" for name, value in means.items()),
                               f"(ramp weight {ramp:.4f}{waiting})")
