"""Variants of nnUNetTrainerPASeg: the ablation's terms and schedules."""
from __future__ import annotations

from nnunetv2_paseg.trainers.paseg import nnUNetTrainerPASeg
from nnunetv2_paseg.trainers.variants.epochs import Epochs


class nnUNetTrainerPASeg_pCE(nnUNetTrainerPASeg):
    """Partial loss only: the baseline of the ablation."""

    w_crf = 0.0
    w_vm = 0.0


class nnUNetTrainerPASeg_noCRF(nnUNetTrainerPASeg):
    """Partial loss + variance minimisation (no gated CRF)."""

    w_crf = 0.0


class nnUNetTrainerPASeg_noVM(nnUNetTrainerPASeg):
    """Partial loss + gated CRF (no variance minimisation)."""

    w_vm = 0.0


class nnUNetTrainerPASeg_rampFromStart(nnUNetTrainerPASeg):
    """The reference's schedule: the regularisers ramp up from epoch 0, whatever the network predicts yet."""

    ramp_start_dice = None


class nnUNetTrainerPASeg_100epochs(Epochs, nnUNetTrainerPASeg):
    epochs = 100


class nnUNetTrainerPASeg_300epochs(Epochs, nnUNetTrainerPASeg):
    """The reference's schedule length (300 epochs, ramp-up over the first 30)."""

    epochs = 300
