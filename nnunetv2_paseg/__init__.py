"""nnunetv2-paseg: PA-Seg (learning 3D segmentation from 7 clicks per object) for nnU-Net v2."""
from nnunetv2_paseg.trainers import *  # noqa: F401,F403
