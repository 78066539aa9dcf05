#!/usr/bin/env bash
# Creates (or reuses) .venv/ in the repository root, installs torch + nnU-Net, builds FastGeodis
# against that torch and installs this project. Safe to re-run: finished steps are skipped.
#   PASEG_TORCH   pip requirement for torch (default: "torch"; e.g. "torch==2.5.1" or a CUDA index build)
#   PASEG_PYTHON  interpreter used to create the venv (default: python3)
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
# FastGeodis ships source only and compiles against the torch it finds, so it is built without
# build isolation and without pip's wheel cache (a cached wheel may match another torch).
if ! "$venv/bin/python" -c "import torch, FastGeodis" 2>/dev/null; then
  echo "[setup] building FastGeodis against $("$venv/bin/python" -c 'import torch; print(torch.__version__)') (2-6 min)"
  "${pip[@]}" install --no-build-isolation --no-cache-dir FastGeodis
fi
# Not editable: the wheel places a shim module inside nnunetv2's trainer folder so that
# nnUNetv2_train / nnUNetv2_predict find the PA-Seg trainers by name.
echo "[setup] installing nnunetv2-paseg"
"${pip[@]}" install -q --no-build-isolation "$root[test]"
"$venv/bin/python" -c "import nnunetv2, FastGeodis, nnunetv2_paseg; print('[setup] ok: nnunetv2', nnunetv2.__path__[0])"
