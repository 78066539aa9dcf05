"""Re-exports the PA-Seg trainers (``nnunetv2_paseg.trainers``) to nnU-Net's trainer look-up by class name.

nnU-Net imports every module of its trainer folder until one has the requested class, so an exception raised here
would break the look-up of every trainer, nnU-Net's own included (e.g. ``nnUNetTrainer_5epochs``). A failed import of
the PA-Seg trainers (a broken install, a missing dependency) is therefore reported as one warning when this module
is imported, and the module then exports nothing: nnU-Net finds its own trainers and reports PA-Seg's as not found.
"""
import warnings

try:
    from nnunetv2_paseg.trainers import *  # noqa: F401,F403
except Exception as error:  # not only ImportError: any exception of a dependency's import would end the look-up
    warnings.warn(f"nnunetv2-paseg: the PA-Seg trainers (nnUNetTrainerPASeg, nnUNetTrainerSCM, ...) are unavailable: "
                  f"importing nnunetv2_paseg.trainers failed with {type(error).__name__}: {error}. nnU-Net's other "
                  f"trainers are unaffected. Fix: re-run scripts/setup.sh in the nnunetv2-paseg checkout (or "
                  f"reinstall nnunetv2-paseg); to remove PA-Seg instead: pip uninstall nnunetv2-paseg.",
                  RuntimeWarning)
