"""How nnU-Net finds the PA-Seg trainers across installs: the shim in nnU-Net's trainer folder (regular nnunetv2), a
broken nnunetv2-paseg, an editable nnunetv2 (``nnUNet_extTrainer``), uninstalling nnunetv2-paseg, replacing nnunetv2.

Each test installs into its own scratch virtual environment, never into the one running the tests: a venv without
pip whose site-packages has a ``.pth`` line to a folder of links to this environment's packages (torch, pip,
setuptools, ...) minus nnunetv2 and nnunetv2-paseg, so that the scratch env holds its own copies of those two and
pip, run by the scratch interpreter, installs and removes files in the scratch env only. nnunetv2 is installed there
from a wheel rebuilt from this environment's installed nnunetv2, or editable from a copy of its files; nnunetv2-paseg
with the project's install step, scripts/install.py. Every check runs in a fresh scratch interpreter, outside the
repository (which would otherwise be importable from the working directory).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.scratch_env
THIS_SITE = Path(sysconfig.get_paths()["purelib"])
# Installed by the scratch envs themselves; everything else of this environment is linked.
OWN_PACKAGES = ("nnunetv2", "point_tools", "dataset_conversion")  # prefixes: nnunetv2_paseg, dist-info folders too
SHIM_PARTS = ("nnunetv2", "training", "nnUNetTrainer", "variants", "paseg")
# How the shim's warning starts on stderr (Python then echoes the source line, which holds the text again).
WARNING = "RuntimeWarning: nnunetv2-paseg: the PA-Seg trainers"
# Looks up (trainer name, nnUNet_extTrainer or None) pairs the way nnUNetv2_train does; prints one JSON line.
LOOKUP = """
import json, os, sys
import nnunetv2
from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
found = []
for name, ext in json.loads(sys.argv[1]):
    os.environ.pop("nnUNet_extTrainer", None)
    if ext:
        os.environ["nnUNet_extTrainer"] = ext
    try:
        cls = recursive_find_trainer_class_by_name(name)
        found.append([cls.__module__, sys.modules[cls.__module__].__file__])
    except RuntimeError:
        found.append(None)
print("LOOKUP " + json.dumps({"nnunetv2": nnunetv2.__path__[0], "found": found}))
"""


def _wheel_of_installed(name: str, out: Path) -> Path:
    """A wheel of the installed distribution ``name``: its files under site-packages, with a fresh RECORD."""
    dist = metadata.distribution(name)
    info = next(f.parts[0] for f in dist.files if f.parts[0].endswith(".dist-info"))
    wheel = out / f"{info[: -len('.dist-info')]}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files:
            # Scripts in bin/ are made by pip from entry_points.txt; pip writes INSTALLER etc. itself.
            if file.parts[0] == ".." or "__pycache__" in file.parts or \
                    file.name in ("INSTALLER", "REQUESTED", "direct_url.json", "RECORD"):
                continue
            data = Path(dist.locate_file(file)).read_bytes()
            archive.writestr(str(file), data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{file},sha256={digest},{len(data)}")
        archive.writestr(f"{info}/RECORD", "\n".join(record + [f"{info}/RECORD,,"]) + "\n")
    return wheel


@pytest.fixture(scope="module")
def installers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``links``: the folder of links to this environment's packages; ``nnunet_wheel``: nnunetv2 as a wheel;
    ``nnunet_source``: a checkout-like copy of nnunetv2 (its package and a pyproject.toml) for ``pip install -e``."""
    root = tmp_path_factory.mktemp("installers")
    links = root / "links"
    links.mkdir()
    for entry in THIS_SITE.iterdir():
        if not (entry.name.startswith(OWN_PACKAGES) or entry.suffix == ".pth" or entry.name == "__pycache__"
                or entry.name.startswith("__editable__")):
            (links / entry.name).symlink_to(entry)
    source = root / "nnUNet"
    dist = metadata.distribution("nnunetv2")
    for file in dist.files:
        if file.parts[0] == "nnunetv2" and "__pycache__" not in file.parts:
            (source / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dist.locate_file(file), source / file)
    (source / "pyproject.toml").write_text(
        f'[project]\nname = "nnunetv2"\nversion = "{dist.version}"\n\n'
        '[build-system]\nrequires = ["setuptools>=67.8.0"]\nbuild-backend = "setuptools.build_meta"\n')
    return {"links": links, "nnunet_wheel": _wheel_of_installed("nnunetv2", root), "nnunet_source": source}


@dataclass
class ScratchEnv:
    """A scratch virtual environment (see the module docstring)."""

    python: Path
    site: Path
    cwd: Path

    def run(self, *args: str | os.PathLike, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run this env's interpreter in a clean environment (no PYTHONPATH, no nnUNet_extTrainer)."""
        clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "nnUNet_extTrainer")}
        proc = subprocess.run([str(self.python), *map(str, args)], env={**clean, **(env or {})}, cwd=self.cwd,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def pip(self, *args: str | os.PathLike) -> subprocess.CompletedProcess:
        return self.run("-m", "pip", "--disable-pip-version-check", *args)

    def install_project(self) -> str:
        """The project's install step, offline (every dependency is linked); returns its output."""
        return self.run(REPO_ROOT / "scripts" / "install.py", "--no-deps", "--no-index").stdout

    def lookup(self, *queries: tuple[str, str | None]) -> tuple[dict, str]:
        """nnU-Net's look-up of (trainer, nnUNet_extTrainer) pairs: ({"nnunetv2": its folder, "found": [[module,
        file] or None, ...]}, stderr)."""
        proc = self.run("-c", LOOKUP, json.dumps(queries))
        line = next(line for line in reversed(proc.stdout.splitlines()) if line.startswith("LOOKUP "))
        return json.loads(line[len("LOOKUP "):]), proc.stderr

    @property
    def shim(self) -> Path:
        return self.site.joinpath(*SHIM_PARTS)


@pytest.fixture
def scratch(tmp_path: Path, installers: dict[str, Path]) -> ScratchEnv:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "linked_packages.pth").write_text(f"{installers['links']}\n")
    work = tmp_path / "work"
    work.mkdir()
    return ScratchEnv(python, site, work)


def _is_ours(found: list | None, env: ScratchEnv) -> bool:
    """Whether a look-up result is the project's trainer class, imported from the scratch env's install."""
    return found is not None and found[0] == "nnunetv2_paseg.trainers.paseg" and Path(found[1]).is_relative_to(env.site)


def test_regular_nnunet_finds_the_trainers_and_a_replaced_nnunet_gets_the_shim_back(scratch: ScratchEnv,
                                                                                    installers: dict[str, Path]):
    scratch.pip("install", "-q", "--no-deps", "--no-index", installers["nnunet_wheel"])
    assert "nnU-Net finds the PA-Seg trainers through" in scratch.install_project()
    result, _ = scratch.lookup(("nnUNetTrainerPASeg", None), ("nnUNetTrainer_5epochs", None))
    assert Path(result["nnunetv2"]).parent == scratch.site
    assert _is_ours(result["found"][0], scratch)
    assert result["found"][1][0].startswith("nnunetv2.training.nnUNetTrainer.variants")

    # pip's reinstall of nnunetv2 removes only nnunetv2's own files.
    scratch.pip("install", "-q", "--force-reinstall", "--no-deps", "--no-index", installers["nnunet_wheel"])
    assert (scratch.shim / "paseg_trainers.py").is_file()

    # A new copy of nnunetv2 that replaces its whole folder comes without the shim; the install step restores it.
    scratch.pip("uninstall", "-y", "-q", "nnunetv2")
    shutil.rmtree(scratch.site / "nnunetv2")
    scratch.pip("install", "-q", "--no-deps", "--no-index", installers["nnunet_wheel"])
    result, _ = scratch.lookup(("nnUNetTrainerPASeg", None), ("nnUNetTrainer_5epochs", None))
    assert result["found"][0] is None and result["found"][1] is not None
    scratch.install_project()
    result, _ = scratch.lookup(("nnUNetTrainerPASeg", None))
    assert _is_ours(result["found"][0], scratch)


def test_uninstalling_nnunetv2_paseg_removes_the_shim(scratch: ScratchEnv, installers: dict[str, Path]):
    scratch.pip("install", "-q", "--no-deps", "--no-index", installers["nnunet_wheel"])
    scratch.install_project()
    assert (scratch.shim / "paseg_trainers.py").is_file()
    scratch.pip("uninstall", "-y", "-q", "nnunetv2-paseg")
    assert not scratch.shim.exists()
    assert not (scratch.site / "nnunetv2_paseg").exists()
    result, _ = scratch.lookup(("nnUNetTrainerPASeg", None), ("nnUNetTrainer_5epochs", None))
    assert result["found"][0] is None and result["found"][1] is not None


def test_a_broken_install_warns_once_and_nnunet_still_finds_its_own_trainers(scratch: ScratchEnv,
                                                                              installers: dict[str, Path]):
    scratch.pip("install", "-q", "--no-deps", "--no-index", installers["nnunet_wheel"])
    scratch.install_project()
    (scratch.site / "nnunetv2_paseg" / "losses" / "crf.py").unlink()
    result, stderr = scratch.lookup(("nnUNetTrainer_5epochs", None), ("nnUNetTrainerPASeg", None),
                                    ("nnUNetTrainer_5epochs", None))
    assert result["found"][0][0].endswith("nnUNetTrainer_Xepochs") and result["found"][2] == result["found"][0]
    assert result["found"][1] is None
    assert stderr.count(WARNING) == 1, stderr[-3000:]
    warning = stderr[stderr.index(WARNING):]
    assert "ModuleNotFoundError: No module named 'nnunetv2_paseg.losses.crf'" in warning
    assert "re-run scripts/setup.sh" in warning


def test_editable_nnunet_uses_nnunet_ext_trainer(scratch: ScratchEnv, installers: dict[str, Path]):
    # First a regular nnunetv2 with the shim, then nnunetv2 made editable (as pip install -e nnUNet does it): the
    # shim's folders left in site-packages hide the editable nnunetv2 until the install step is run again.
    scratch.pip("install", "-q", "--no-deps", "--no-index", installers["nnunet_wheel"])
    scratch.install_project()
    source = installers["nnunet_source"]
    scratch.pip("install", "-q", "--no-deps", "--no-index", "--no-build-isolation", "-e", source)
    hidden = scratch.run("-c", "import nnunetv2; print(nnunetv2.__file__)").stdout.split()
    assert hidden == ["None"]  # a namespace package: site-packages/nnunetv2/training/... without nnU-Net in it

    output = scratch.install_project()
    assert not (scratch.site / "nnunetv2").exists()
    ext = output.split("export nnUNet_extTrainer=")[1].split("$")[0]
    assert Path(ext) == scratch.site / "nnunetv2_paseg" / "nnunet_shim"
    readme_way = scratch.run("-c", "import nnunetv2_paseg.nnunet_shim as s; print(s.__path__[0])")  # as README says
    assert Path(readme_way.stdout.split()[-1]) == Path(ext)
    result, _ = scratch.lookup(("nnUNetTrainerPASeg", None), ("nnUNetTrainer_5epochs", None),
                               ("nnUNetTrainerPASeg", ext), ("nnUNetTrainerSCM", ext))
    assert Path(result["nnunetv2"]) == source / "nnunetv2"
    assert result["found"][0] is None and result["found"][1] is not None
    assert _is_ours(result["found"][2], scratch)
    assert result["found"][3][0] == "nnunetv2_paseg.trainers.scm"
