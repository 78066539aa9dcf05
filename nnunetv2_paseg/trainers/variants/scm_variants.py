"""Variants of nnUNetTrainerSCM: the teachers' choice, the self-training targets and the schedule."""
from __future__ import annotations

from nnunetv2_paseg.trainers.scm import nnUNetTrainerSCM
from nnunetv2_paseg.trainers.variants.epochs import Epochs


class nnUNetTrainerSCM_crossKD(nnUNetTrainerSCM):
    """The paper's stage 2 (this package's default until 2026-12-07): the auxiliary network from
    nnUNetTrainerPASegAux (PASeg's losses), snapshots refreshed every fifth of the epochs, each network self-training
    on its own snapshot's label plus cross knowledge distillation from the other's (w_kd 0.5)."""

    aux_stage1_trainer = "nnUNetTrainerPASegAux"
    teacher = "refresh"
    self_training_target = "own"
    w_kd = 0.5


class nnUNetTrainerSCM_pureSnapshot(nnUNetTrainerSCM_crossKD):
    """The reference's self-training targets: the snapshot's hard label everywhere, the clicks' labels dropped."""

    keep_labelled_voxels = False


class nnUNetTrainerSCM_emaTeacher(nnUNetTrainerSCM_crossKD):
    """nnUNetTrainerSCM_crossKD with snapshots as exponential moving averages of the networks' weights instead of
    periodic copies."""

    teacher = "ema"


class nnUNetTrainerSCM_100epochs(Epochs, nnUNetTrainerSCM):
    """The reference's stage-2 length (100 epochs)."""

    epochs = 100
