"""Pseudo-labels that use the extreme-point constraint of the 7 clicks: method ``extremes`` of ``paseg_convert``.

The six background clicks sit one margin beyond the object's extremes along each axis (the protocol), so the voxel
one step inward of each, towards the box, is the object's extreme voxel: the object reaches every face of its box
there. The geodesic rule and ``refined`` use the clicks only as background seeds; this method also uses them as
foreground evidence. Per object, inside its box:

1. the geodesic share ``s`` from the foreground click, its core ``s < threshold``, its surround, and the intensity
   log-odds of core against surround (``point_tools.refine``);
2. per background click on a box face, the voxel one step inward (``inward_voxels``), kept if the image agrees
   (log-odds > 0) and if the steepest-descent path of the geodesic distance from it to the foreground click
   (``descent_path``) runs through object-like intensity on at least ``agreement`` of its voxels: a jittered click
   whose inward voxel lies outside the object, or whose path crosses background, adds nothing;
3. those paths (a skeleton from the centre to the extremes) without their last ``trim`` voxels, and the click,
   become the foreground seeds of a new geodesic share ``s'`` against the box faces and background clicks; the
   core is ``s < threshold`` or ``s' < extreme_threshold`` (stricter than ``threshold``: a path ends a few voxels
   from its background click);
4. that core is grown along the intensity model exactly as in ``refined`` (``refine_foreground``, with ``s'`` as
   the share that bounds the growth).

Without an agreeing extreme the result is ``refined``'s. Everything here is a pure function of arrays;
``extremes_pseudo_label`` assembles the label map with the same values, rules and checks as the other methods.
"""
from __future__ import annotations

from itertools import product
from typing import Sequence

import numpy as np
import torch

from point_tools.clicks import Index, ObjectClicks
from point_tools.geodesic import DEFAULT_ITERATIONS, DEFAULT_LAMBDA, BoxInputs, distance_share
from point_tools.refine import (BACKGROUND_SHARE, DEFAULT_CORE_THRESHOLD, box_crop, check_share, intensity_log_odds,
                                label_by_object, refine_foreground)

# Chosen by benchmarks/pseudo_label_tuning.py (benchmarks/results/pseudo_label_extremes.md).
DEFAULT_EXTREME_THRESHOLD = 0.2
DEFAULT_AGREEMENT = 0.9
DEFAULT_TRIM = 3

_NEIGHBOURS = np.array([o for o in product((-1, 0, 1), repeat=3) if o != (0, 0, 0)])


def inward_voxels(obj: ObjectClicks) -> list[Index]:
    """Per background click on a face of the object's box: the voxel one step inward along that face's axis, in
    box coordinates (the object's extreme voxel when the click is exact). A click on two faces gives two."""
    low, high = obj.box()
    out = []
    for click in obj.background:
        for axis in range(3):
            for face, step in ((low[axis], 1), (high[axis], -1)):
                if click[axis] == face and low[axis] <= click[axis] + step <= high[axis]:
                    voxel = [c - lo for c, lo in zip(click, low)]
                    voxel[axis] += step
                    out.append(tuple(voxel))
    return out


def descent_path(distance: np.ndarray, start: Index) -> np.ndarray:
    """Voxels (N, 3) int, in order, of the steepest-descent path over ``distance`` (Z, Y, X, >= 0) from ``start``
    to a voxel without a lower 26-neighbour (a seed of the distance, where it is 0). Each step moves to the lowest
    neighbour, so the distance falls strictly along the path: the discrete geodesic back to the seeds."""
    shape = np.array(distance.shape)
    point = np.array(start)
    path = [point]
    while True:
        neighbours = point + _NEIGHBOURS
        neighbours = neighbours[((neighbours >= 0) & (neighbours < shape)).all(axis=1)]
        values = distance[tuple(neighbours.T)]
        if values.min() >= distance[tuple(point)]:
            return np.array(path)
        point = neighbours[values.argmin()]
        path.append(point)


def _check_path_settings(agreement: float, trim: int) -> None:
    check_share("agreement", agreement)
    if isinstance(trim, bool) or not isinstance(trim, (int, np.integer)) or trim < 0:
        raise ValueError(f"trim must be an integer >= 0, got {trim!r}")


def extreme_paths(distance: np.ndarray, log_odds: np.ndarray, starts: Sequence[Index], excluded: np.ndarray,
                  agreement: float = DEFAULT_AGREEMENT, trim: int = DEFAULT_TRIM) -> np.ndarray:
    """Union (Z, Y, X) bool of the descent paths over ``distance`` from the ``starts`` that the image agrees with:
    the start has ``log_odds > 0``, is not ``excluded`` (a background seed), and at least ``agreement`` of its
    path's voxels have ``log_odds > 0``; each path without its first ``trim`` voxels (the extreme end, where a
    jittered click leaves the object). Empty when none does."""
    _check_path_settings(agreement, trim)
    paths = np.zeros(distance.shape, bool)
    for start in starts:
        if excluded[start] or log_odds[start] <= 0:
            continue
        path = tuple(descent_path(distance, start).T)
        if (log_odds[path] > 0).mean() >= agreement:
            paths[tuple(axis[trim:] for axis in path)] = True
    return paths


def extremes_foreground(crop: np.ndarray, fg_seed: np.ndarray, background_seeds: np.ndarray,
                        starts: Sequence[Index], unit_spacing: Sequence[float], *, lamb: float = DEFAULT_LAMBDA,
                        threshold: float = DEFAULT_CORE_THRESHOLD,
                        extreme_threshold: float = DEFAULT_EXTREME_THRESHOLD, agreement: float = DEFAULT_AGREEMENT,
                        trim: int = DEFAULT_TRIM,
                        iterations: int = DEFAULT_ITERATIONS, device: torch.device = torch.device("cpu"),
                        **growth) -> np.ndarray:
    """Foreground (Z, Y, X) bool of one object's box by steps 1-4 of the module docstring.

    crop: (C, Z, Y, X), each channel in [0, 1]. fg_seed, background_seeds: (Z, Y, X) bool (the foreground click;
    the box faces and background clicks). starts: ``inward_voxels`` of the object. lamb: the geodesic weight of
    both shares; threshold: the click's core, ``s < threshold``; extreme_threshold: the paths' core,
    ``s' < extreme_threshold``. growth: ``refine_foreground``'s growth settings (max_share, share_threshold, lamb of
    the second split as ``growth_lamb``, min_log_odds, erode, erode_overlap, background_share).
    """
    if crop.ndim != 4 or crop.shape[1:] != fg_seed.shape or fg_seed.shape != background_seeds.shape:
        raise ValueError(f"crop {crop.shape}, fg_seed {fg_seed.shape} and background_seeds "
                         f"{background_seeds.shape} must cover the same box")
    check_share("extreme_threshold", extreme_threshold)
    _check_path_settings(agreement, trim)
    growth_lamb = growth.pop("growth_lamb", None)
    refine_kwargs = dict(growth, iterations=iterations, device=device)
    if growth_lamb is not None:
        refine_kwargs["lamb"] = growth_lamb
    # the distances see each channel divided by C, as the geodesic method's (point_tools.geodesic.normalise_box)
    tensor = torch.from_numpy(np.ascontiguousarray(crop / len(crop), dtype=np.float32))[None].to(device)
    d_fg, share = distance_share(tensor, fg_seed, background_seeds & ~fg_seed, unit_spacing, lamb, iterations)
    if not (background_seeds & ~fg_seed).any():  # a box that is the whole image: nothing to reach the extremes from
        return refine_foreground(crop, share, background_seeds, unit_spacing, threshold=threshold, **refine_kwargs)
    core = share < threshold
    surround = share > growth.get("background_share", BACKGROUND_SHARE)
    paths = np.zeros_like(core)
    if core.any() and surround.any():
        paths = extreme_paths(d_fg, intensity_log_odds(crop, core, surround), starts, background_seeds, agreement,
                              trim)
    if not paths.any():
        return refine_foreground(crop, share, background_seeds, unit_spacing, threshold=threshold, **refine_kwargs)
    seeds = paths | fg_seed
    other = background_seeds & ~seeds
    extreme_share = distance_share(tensor, seeds, other, unit_spacing, lamb, iterations)[1]
    # the click's core enters as share 0, so that refine_foreground's core is the union of the two cores
    return refine_foreground(crop, np.where(core, 0.0, extreme_share), other, unit_spacing,
                             threshold=extreme_threshold, **refine_kwargs)


def extremes_pseudo_label(image: np.ndarray, spacing: Sequence[float], objects: Sequence[ObjectClicks],
                          num_classes: int = 1, lamb: float = DEFAULT_LAMBDA,
                          threshold: float = DEFAULT_CORE_THRESHOLD, device: str | None = None, *,
                          iterations: int = DEFAULT_ITERATIONS, source: str = "image") -> np.ndarray:
    """Pseudo-label (Z, Y, X) uint8 of an image (C, Z, Y, X) from its objects' clicks, method ``extremes``.

    The same values, checks and rules as ``geodesic_pseudo_label`` and ``refined_pseudo_label`` (0 background,
    1..num_classes, num_classes + 1 ignore; outside every box background; the foreground click always foreground;
    errors name ``source``); inside each box, ``extremes_foreground`` at ``lamb`` and core ``threshold``. All
    channels count. device: "cpu", "cuda", ...; default CUDA when available.
    """
    def foreground(inputs: BoxInputs, obj: ObjectClicks, torch_device: torch.device) -> np.ndarray:
        return extremes_foreground(box_crop(inputs), inputs.fg_seed, inputs.bg_seed, inward_voxels(obj),
                                   inputs.unit_spacing, lamb=lamb, threshold=threshold, iterations=iterations,
                                   device=torch_device)

    return label_by_object(image, spacing, objects, num_classes, device, source, foreground)
