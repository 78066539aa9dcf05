"""The project's install step (scripts/setup.sh runs it): install nnunetv2-paseg into this interpreter's environment.

    .venv/bin/python scripts/install.py [pip options, e.g. --no-deps]

A regular (non-editable) wheel, built without build isolation against the torch of the environment. Where nnunetv2 is
a regular install, the wheel also puts a shim into nnunetv2's trainer folder, so that ``nnUNetv2_train -tr
nnUNetTrainerPASeg`` and ``nnUNetv2_predict`` find the PA-Seg trainers with no set-up; a new copy of nnunetv2 that
replaced the folder lacks it, and running this again restores it. Where nnunetv2 is an editable install (``pip
install -e nnUNet``), the shim is left out (``PASEG_NNUNET_SHIM=0``, see setup.py), empty folders that an earlier
install's shim left in site-packages are removed (Python would import them as nnunetv2 in place of the editable
one), and the ``nnUNet_extTrainer`` to export is printed. Uses the standard library only: it must run while nnU-Net
cannot be imported.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIM_MODULE = "nnunetv2.training.nnUNetTrainer.variants.paseg.paseg_trainers"


def site_packages() -> Path:
    """This environment's site-packages, where pip installs the wheel."""
    return Path(sysconfig.get_paths()["purelib"]).resolve()


def nnunet_is_regular_install(site: Path) -> bool:
    """Whether the installed nnunetv2 is imported from ``site`` (True also when none is installed yet: pip then
    installs it there as a dependency)."""
    try:
        metadata.distribution("nnunetv2")
    except metadata.PackageNotFoundError:
        return True
    spec = importlib.util.find_spec("nnunetv2")
    return spec is not None and spec.origin is not None and Path(spec.origin).resolve().parent == site / "nnunetv2"


def remove_empty_folders(folder: Path) -> list[Path]:
    """Delete the folders under ``folder`` (itself included) that hold no file, deepest first; return them."""
    removed = []
    for path in sorted((p for p in [folder, *folder.rglob("*")] if p.is_dir()), key=lambda p: len(p.parts),
                       reverse=True):
        if not any(path.iterdir()):
            path.rmdir()
            removed.append(path)
    return removed


def ext_trainer_folder() -> Path:
    """The installed ``nnunetv2_paseg/nnunet_shim/``, found without importing nnunetv2_paseg (which imports nnU-Net)."""
    return Path(metadata.distribution("nnunetv2-paseg").locate_file("nnunetv2_paseg/nnunet_shim")).resolve()


def shim_origin() -> str | None:
    """The file of the shim that nnU-Net's trainer look-up imports, if that look-up can reach it."""
    try:
        spec = importlib.util.find_spec(SHIM_MODULE)
    except ImportError:  # a parent package (nnunetv2, ...) is missing
        return None
    return None if spec is None else spec.origin


def main(pip_args: list[str]) -> None:
    site = site_packages()
    with_shim = nnunet_is_regular_install(site)
    env = {**os.environ, "PASEG_NNUNET_SHIM": "1" if with_shim else "0"}
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-build-isolation",
           f"{REPO}[test]", *pip_args]
    print(f"[install] installing nnunetv2-paseg into {site}", flush=True)
    subprocess.run(cmd, env=env, check=True)
    importlib.invalidate_caches()  # pip changed site-packages after this process listed it
    if not with_shim and (site / "nnunetv2").is_dir() and not (site / "nnunetv2" / "__init__.py").exists():
        for path in remove_empty_folders(site / "nnunetv2"):
            print(f"[install] removed {path}, an empty folder left by an earlier install's shim")
    origin = shim_origin()
    if origin is not None:
        print(f"[install] nnU-Net finds the PA-Seg trainers through {origin}")
        return
    nnunet = importlib.util.find_spec("nnunetv2")
    where = Path(nnunet.origin).parent if nnunet is not None and nnunet.origin else "outside site-packages"
    print(f"[install] nnunetv2 is imported from {where} (an editable install, or PYTHONPATH), whose trainer folder "
          f"nnunetv2-paseg does not write into. For nnUNetv2_train / nnUNetv2_predict to find the PA-Seg trainers, "
          f"add to your shell's start-up file:\n"
          f"export nnUNet_extTrainer={ext_trainer_folder()}${{nnUNet_extTrainer:+{os.pathsep}$nnUNet_extTrainer}}")


if __name__ == "__main__":
    main(sys.argv[1:])
