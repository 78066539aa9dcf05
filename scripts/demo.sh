#!/usr/bin/env bash
# The main job: set up .venv (scripts/setup.sh), then run the demo driver (scripts/demo.py): real brain MRI,
# 7 clicks per ventricle -> pseudo-labels -> nnUNetTrainerPASeg -> predictions scored against full labels.
# Ends with "mean Dice: X.XXX". Arguments go to the driver (--help lists them).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
exec "$root/.venv/bin/python" "$root/scripts/demo.py" "$@"
