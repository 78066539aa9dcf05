"""Variants of nnUNetTrainerPASegAux: the epoch schedules of its stage-1 training."""
from __future__ import annotations

from nnunetv2_paseg.trainers.paseg_aux import nnUNetTrainerPASegAux
from nnunetv2_paseg.trainers.variants.epochs import Epochs


class nnUNetTrainerPASegAux_100epochs(Epochs, nnUNetTrainerPASegAux):
    epochs = 100


class nnUNetTrainerPASegAux_300epochs(Epochs, nnUNetTrainerPASegAux):
    epochs = 300
