"""A folder that nnU-Net searches for trainers by class name; its one module re-exports the PA-Seg trainers.

The wheel installs it twice (see setup.py):
- as ``nnunetv2/training/nnUNetTrainer/variants/paseg/``, inside a regular nnunetv2 install, where
  ``nnUNetv2_train -tr NAME`` and ``nnUNetv2_predict`` search module by module: nothing to set up;
- as ``nnunetv2_paseg/nnunet_shim/``, the folder to name in ``nnUNet_extTrainer`` when nnunetv2 is an editable
  install (``pip install -e nnUNet``), whose trainer folder is the source checkout's.

Nothing here may import anything: nnU-Net imports this package while looking for any trainer.
"""
