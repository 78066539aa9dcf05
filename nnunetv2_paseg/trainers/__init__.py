"""PA-Seg nnU-Net trainers. Every public class here is found by ``nnUNetv2_train -tr NAME``."""
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2_paseg.trainers.budget import budget_trainers
from nnunetv2_paseg.trainers.paseg import (nnUNetTrainerPASeg, nnUNetTrainerPASeg_50epochs,
                                           nnUNetTrainerPASeg_100epochs, nnUNetTrainerPASeg_300epochs,
                                           nnUNetTrainerPASeg_allChanges, nnUNetTrainerPASeg_cleanGuide,
                                           nnUNetTrainerPASeg_fullCRF, nnUNetTrainerPASeg_fullResWeights,
                                           nnUNetTrainerPASeg_mmCRF, nnUNetTrainerPASeg_mmCRF3,
                                           nnUNetTrainerPASeg_mmCRF10,
                                           nnUNetTrainerPASeg_mmCRF_sigmaX0p2,
                                           nnUNetTrainerPASeg_noCRF, nnUNetTrainerPASeg_noVM, nnUNetTrainerPASeg_pCE,
                                           nnUNetTrainerPASeg_rampFromStart, nnUNetTrainerPASeg_voxelCRF)
from nnunetv2_paseg.trainers.paseg_aux import (nnUNetTrainerPASegAux, nnUNetTrainerPASegAux_50epochs,
                                               nnUNetTrainerPASegAux_100epochs, nnUNetTrainerPASegAux_300epochs,
                                               nnUNetTrainerPASegAux_presetDepth)
from nnunetv2_paseg.trainers.scm import (nnUNetTrainerSCM, nnUNetTrainerSCM_50epochs, nnUNetTrainerSCM_100epochs,
                                         nnUNetTrainerSCM_emaTeacher, nnUNetTrainerSCM_presetDepthAux,
                                         nnUNetTrainerSCM_presetDepthAuxEmaTeacher, nnUNetTrainerSCM_pureSnapshot)

__all__ = ["nnUNetTrainerPASeg", "nnUNetTrainerPASeg_pCE", "nnUNetTrainerPASeg_noCRF", "nnUNetTrainerPASeg_noVM",
           "nnUNetTrainerPASeg_fullCRF", "nnUNetTrainerPASeg_voxelCRF", "nnUNetTrainerPASeg_mmCRF",
           "nnUNetTrainerPASeg_mmCRF3", "nnUNetTrainerPASeg_mmCRF10", "nnUNetTrainerPASeg_mmCRF_sigmaX0p2",
           "nnUNetTrainerPASeg_cleanGuide", "nnUNetTrainerPASeg_fullResWeights",
           "nnUNetTrainerPASeg_allChanges", "nnUNetTrainerPASeg_50epochs", "nnUNetTrainerPASeg_100epochs",
           "nnUNetTrainerPASeg_300epochs", "nnUNetTrainerPASeg_rampFromStart",
           "nnUNetTrainerPASegAux", "nnUNetTrainerPASegAux_presetDepth", "nnUNetTrainerPASegAux_50epochs",
           "nnUNetTrainerPASegAux_100epochs", "nnUNetTrainerPASegAux_300epochs",
           "nnUNetTrainerSCM", "nnUNetTrainerSCM_emaTeacher", "nnUNetTrainerSCM_presetDepthAux",
           "nnUNetTrainerSCM_presetDepthAuxEmaTeacher", "nnUNetTrainerSCM_pureSnapshot", "nnUNetTrainerSCM_50epochs",
           "nnUNetTrainerSCM_100epochs"]

# NAME_budget for nnUNetTrainer and each trainer above (the demo's and the benchmarks' fixed schedules).
_BUDGET = budget_trainers([nnUNetTrainer] + [globals()[name] for name in __all__])
globals().update(_BUDGET)
__all__ += list(_BUDGET)
