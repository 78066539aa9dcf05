"""The PA-Seg nnU-Net trainers. Every class here is found by ``nnUNetv2_train -tr NAME`` and ``nnUNetv2_predict``.

The method: nnUNetTrainerPASeg (stage 1), nnUNetTrainerPASegAux_pCE (stage 1 of the auxiliary network) and
nnUNetTrainerSCM (stage 2); the variants a user would run are in ``variants/``, each the default plus one change.
"""
from nnunetv2_paseg.trainers.paseg import nnUNetTrainerPASeg
from nnunetv2_paseg.trainers.paseg_aux import nnUNetTrainerPASegAux
from nnunetv2_paseg.trainers.scm import nnUNetTrainerSCM
from nnunetv2_paseg.trainers.variants.aux_variants import nnUNetTrainerPASegAux_pCE
from nnunetv2_paseg.trainers.variants.paseg_variants import (nnUNetTrainerPASeg_100epochs, nnUNetTrainerPASeg_300epochs,
                                                             nnUNetTrainerPASeg_noCRF, nnUNetTrainerPASeg_noVM,
                                                             nnUNetTrainerPASeg_pCE, nnUNetTrainerPASeg_rampFromStart)
from nnunetv2_paseg.trainers.variants.scm_variants import (nnUNetTrainerSCM_100epochs, nnUNetTrainerSCM_crossKD,
                                                           nnUNetTrainerSCM_emaTeacher, nnUNetTrainerSCM_pureSnapshot)

__all__ = ["nnUNetTrainerPASeg", "nnUNetTrainerPASeg_pCE", "nnUNetTrainerPASeg_noCRF", "nnUNetTrainerPASeg_noVM",
           "nnUNetTrainerPASeg_rampFromStart", "nnUNetTrainerPASeg_100epochs", "nnUNetTrainerPASeg_300epochs",
           "nnUNetTrainerPASegAux", "nnUNetTrainerPASegAux_pCE", "nnUNetTrainerSCM", "nnUNetTrainerSCM_crossKD",
           "nnUNetTrainerSCM_emaTeacher", "nnUNetTrainerSCM_pureSnapshot", "nnUNetTrainerSCM_100epochs"]
