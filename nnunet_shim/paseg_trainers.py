"""Makes the PA-Seg trainers visible to nnU-Net's trainer lookup by class name.

nnUNetv2_train / nnUNetv2_predict search ``nnunetv2/training/nnUNetTrainer`` module by module for the
requested class; this module is installed there by nnunetv2-paseg and re-exports its trainers.
"""
from nnunetv2_paseg.trainers import *  # noqa: F401,F403
