"""Variants of nnUNetTrainerSCM: the teachers' choice, the self-training targets and the schedule."""
from __future__ import annotations

from nnunetv2_paseg.trainers.scm import nnUNetTrainerSCM
from nnunetv2_paseg.trainers.variants.epochs import Epochs


class nnUNetTrainerSCM_pureSnapshot(nnUNetTrainerSCM):
    """The reference's self-training targets: the snapshot's hard label everywhere, the clicks' labels dropped."""

    keep_labelled_voxels = False


class nnUNetTrainerSCM_emaTeacher(nnUNetTrainerSCM):
    """Snapshots as exponential moving averages of the networks' weights instead of periodic copies."""

    teacher = "ema"


class nnUNetTrainerSCM_100epochs(Epochs, nnUNetTrainerSCM):
    """The reference's stage-2 length (100 epochs, snapshots refreshed every 20)."""

    epochs = 100
