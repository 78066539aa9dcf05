"""The wheel's package list (the metadata is in pyproject.toml).

``nnunetv2_paseg/nnunet_shim/`` is packaged a second time as ``nnunetv2.training.nnUNetTrainer.variants.paseg``:
inside nnunetv2's own trainer folder, where ``nnUNetv2_train -tr NAME`` and ``nnUNetv2_predict`` find trainers by
class name. ``PASEG_NNUNET_SHIM=0`` leaves that copy out; scripts/install.py sets it when nnunetv2 is an editable
install, because a folder ``site-packages/nnunetv2/`` without ``__init__.py`` would be imported as a namespace
package in place of the editable nnunetv2 and break nnU-Net.
"""
import os

from setuptools import setup

NNUNET_SHIM = "nnunetv2.training.nnUNetTrainer.variants.paseg"
PACKAGES = ["nnunetv2_paseg", "nnunetv2_paseg.losses", "nnunetv2_paseg.trainers", "nnunetv2_paseg.trainers.variants",
            "nnunetv2_paseg.nnunet_shim",
            "point_tools", "dataset_conversion"]

with_shim = os.environ.get("PASEG_NNUNET_SHIM", "1") != "0"
setup(packages=PACKAGES + [NNUNET_SHIM] * with_shim,
      package_dir={NNUNET_SHIM: "nnunetv2_paseg/nnunet_shim"} if with_shim else {},
      # Separate build folders: setuptools packs everything left in build/lib, so a build without the shim after one
      # with it would otherwise ship the stale copy.
      options={"build": {"build_base": "build/with_nnunet_shim" if with_shim else "build/without_nnunet_shim"}})
