"""The pseudo-label methods by name, as ``paseg_convert --method`` offers them.

- ``geodesic`` (``point_tools.geodesic.geodesic_pseudo_label``): PA-Seg's geodesic distance from the foreground
  click against the box faces and background clicks; foreground where ``d_fg < threshold * (d_fg + d_bg)``.
- ``refined`` (``point_tools.refine.refined_pseudo_label``): that geodesic foreground as a core, grown along a
  per-object intensity model learned from the core and the box's surround (all channels).
- ``extremes`` (``point_tools.extremes.extremes_pseudo_label``, the default): ``refined`` whose core also holds the
  geodesic paths from the foreground click to the object's extreme voxels (one step inward of each background click)
  where the image agrees.

All take the same inputs, make the same checks of the image and clicks (errors name the case) and keep the same
guarantees (the clicked voxel is foreground, outside every box is background); ``lamb`` and ``threshold`` mean the
geodesic weight and the geodesic (core) threshold in all.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from point_tools.clicks import ObjectClicks
from point_tools.extremes import extremes_pseudo_label
from point_tools.geodesic import DEFAULT_LAMBDA, DEFAULT_THRESHOLD, geodesic_pseudo_label
from point_tools.refine import refined_pseudo_label

METHODS: dict[str, Callable[..., np.ndarray]] = {"geodesic": geodesic_pseudo_label, "refined": refined_pseudo_label,
                                                  "extremes": extremes_pseudo_label}
# extremes: models trained on its pseudo-labels were better than on the geodesic ones on both validation cohorts, for
# pCE and PASeg, in Dice and HD95 (issue 23; docs/experiments.md).
DEFAULT_METHOD = "extremes"


def check_method(method: str) -> str:
    """``method`` if it names a pseudo-label method; ValueError listing the methods otherwise."""
    if method not in METHODS:
        raise ValueError(f"unknown pseudo-label method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def pseudo_label(image: np.ndarray, spacing: Sequence[float], objects: Sequence[ObjectClicks], *,
                 method: str = DEFAULT_METHOD, num_classes: int = 1, lamb: float = DEFAULT_LAMBDA,
                 threshold: float = DEFAULT_THRESHOLD, device: str | None = None, source: str = "image") -> np.ndarray:
    """Pseudo-label (Z, Y, X) uint8 of ``image`` (C, Z, Y, X) by ``method``: 0 background, 1..num_classes, and
    num_classes + 1 ignore (see the method's function for the rest). The settings (method, lambda, threshold,
    device) are taken as given: they are checked where they enter a program (``check_method`` and
    ``point_tools.geodesic``'s checks; ``dataset_conversion.label_settings`` does it for the converters)."""
    return METHODS[method](image, spacing, objects, num_classes=num_classes, lamb=lamb,
                                         threshold=threshold, device=device, source=source)
