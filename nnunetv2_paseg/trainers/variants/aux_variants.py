"""Variants of nnUNetTrainerPASegAux: the partial-loss auxiliary network of nnUNetTrainerSCM's default."""
from __future__ import annotations

from nnunetv2_paseg.trainers.paseg_aux import nnUNetTrainerPASegAux


class nnUNetTrainerPASegAux_pCE(nnUNetTrainerPASegAux):
    """The auxiliary network trained with the partial loss only (no CRF, no variance minimisation): the stage-1
    partner nnUNetTrainerSCM starts from by default. A partial-loss model ends about one voxel outside the objects'
    surface and PASeg about one voxel inside, so the two err on opposite sides and their average lies between."""

    w_crf = 0.0
    w_vm = 0.0

