"""nnunetv2-paseg: PA-Seg (learning 3D segmentation from 7 clicks per object) for nnU-Net v2.

The trainers (``from nnunetv2_paseg import nnUNetTrainerPASeg``) are imported on first use, so that the losses,
``point_tools`` and the converters import without nnU-Net's training stack.
"""


def __getattr__(name: str):
    if name.startswith("nnUNetTrainer"):
        from nnunetv2_paseg import trainers

        if name in trainers.__all__:
            return getattr(trainers, name)
    raise AttributeError(f"module 'nnunetv2_paseg' has no attribute {name!r}")
