"""Light imports: the click tools, the converters and the losses start without nnU-Net's training stack or the plotting
libraries (seconds of start-up for every ``paseg_convert --help``, and a failure there would break conversions that
never train). ``dataset_conversion.previews`` draws with matplotlib and is imported only by ``--preview``."""
from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys

import dataset_conversion
import nnunetv2_paseg.losses
import point_tools
from conftest import REPO_ROOT

HEAVY = ("nnunetv2.training", "matplotlib", "seaborn")
# Modules whose job needs a heavy import; the others must not import them, even indirectly.
HEAVY_BY_DESIGN = {"dataset_conversion.previews"}
# Imports each module in turn (a fresh interpreter, this working tree first on the path) and names, per heavy
# module, the first import that brought it in: sys.modules only grows, so that import is the culprit.
PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[2:]:
    importlib.import_module(name)
    found.update({heavy: name for heavy in sys.argv[1].split(",") if heavy in sys.modules and heavy not in found})
print(json.dumps(found))
"""


def heavy_imports(modules: list[str]) -> dict[str, str]:
    """{heavy module: the first of ``modules`` whose import brought it in}."""
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), *modules], capture_output=True, text=True,
                          cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def light_modules() -> list[str]:
    packages = (point_tools, dataset_conversion, nnunetv2_paseg.losses)
    names = ["nnunetv2_paseg"] + [package.__name__ for package in packages]
    for package in packages:
        names += [info.name for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")]
    return [name for name in names if name not in HEAVY_BY_DESIGN]


def test_click_tools_converters_and_losses_import_light():
    modules = light_modules()
    assert {"point_tools", "dataset_conversion.paseg_convert", "dataset_conversion.vs_tcia",
            "dataset_conversion.brats2019", "nnunetv2_paseg.losses.crf",
            "nnunetv2_paseg.losses.regularised"} <= set(modules)
    assert heavy_imports(modules) == {}


def test_the_probe_sees_a_heavy_import():
    """The check above can fail: the previews module imports matplotlib, and the probe says so."""
    found = heavy_imports(["point_tools", "dataset_conversion.previews"])
    assert found == {"matplotlib": "dataset_conversion.previews"}
