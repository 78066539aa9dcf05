"""The pseudo-label report of a dataset (``pseudo_label_quality.json``) and the objects with (almost) no
pseudo-foreground, which it lists and ``LittleForegroundError`` reports."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from point_tools.quality import mean_quality

QUALITY_REPORT = "pseudo_label_quality.json"

# An object whose pseudo-foreground (the voxels of its class connected to its click) is smaller than this is
# reported: the click alone or a speck beside it is no object's core, but the sign of misplaced clicks, an object
# hardly brighter or darker than its surroundings, or a threshold set too strict. Any object worth 7 clicks
# spans more than 4 voxels.
MIN_FOREGROUND_VOXELS = 5


class LittleForegroundError(Exception):
    """The dataset was written, but some objects' pseudo-labels have fewer than ``MIN_FOREGROUND_VOXELS``
    foreground voxels. ``dataset``: its folder; ``objects``: (case, object number, class, voxels) of each."""

    def __init__(self, dataset: Path, objects: Sequence[tuple[str, int, int, int]]):
        listed = "\n  ".join(f"case {case}: object {n} (class {cls}): {voxels} foreground voxel(s)"
                             for case, n, cls, voxels in objects)
        super().__init__(f"wrote {dataset}, but {len(objects)} object(s) have fewer than {MIN_FOREGROUND_VOXELS} "
                         f"pseudo-foreground voxels (misplaced clicks? see {dataset / QUALITY_REPORT}):\n  {listed}"
                         f"\nCheck them; --allow_empty_foreground accepts them.")
        self.dataset = dataset
        self.objects = list(objects)


def little_foreground(rows: Sequence[dict]) -> list[tuple[str, int, int, int]]:
    """(case, object number, class, voxels) of the objects with fewer than MIN_FOREGROUND_VOXELS foreground voxels."""
    return [(r["case"], n, cls, voxels) for r in rows
            for n, (cls, voxels) in enumerate(zip(r["classes"], r["foreground_voxels"]), start=1)
            if voxels < MIN_FOREGROUND_VOXELS]


def quality_summary(rows: Sequence[dict]) -> dict:
    """The report's JSON (``pseudo_label_quality.json``), written for every dataset:

    - ``min_foreground_voxels``: MIN_FOREGROUND_VOXELS;
    - ``little_foreground``: the objects with fewer foreground voxels, [{case, object, class, foreground_voxels}];
    - ``cases``: per case its number of ``objects``, their ``classes`` and ``foreground_voxels``, and, for cases
      with a full label, its quality (``point_tools.quality``: fg_precision, fg_recall, ...);
    - ``summary``: per quality metric, mean / min / number of cases that define it (only with full labels).
    """
    def clean(value):  # JSON has no NaN: an undefined ratio is null
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        return None if isinstance(value, float) and math.isnan(value) else value

    report = {"min_foreground_voxels": MIN_FOREGROUND_VOXELS,
              "little_foreground": [{"case": case, "object": n, "class": cls, "foreground_voxels": voxels}
                                    for case, n, cls, voxels in little_foreground(rows)],
              "cases": {r["case"]: clean({k: v for k, v in r.items() if k != "case"}) for r in rows}}
    measured = [r for r in rows if "fg_precision" in r]
    if measured:
        report["summary"] = clean(mean_quality(measured))
    return report
