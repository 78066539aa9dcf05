"""PA-Seg regularisation losses."""
from nnunetv2_paseg.losses.crf import MultiViewGatedCRFLoss
from nnunetv2_paseg.losses.distillation import cross_distillation_loss
from nnunetv2_paseg.losses.variance import VarianceMinimizationLoss

__all__ = ["MultiViewGatedCRFLoss", "VarianceMinimizationLoss", "cross_distillation_loss"]
