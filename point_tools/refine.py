"""Refined pseudo-labels from the same 7 clicks: the geodesic core grown along a per-object intensity model.

The geodesic rule (``point_tools.geodesic``) keeps only voxels clearly nearer the foreground click than the box
faces, so it labels the centre of each object: on the tuning set it covers 18% of a structure at precision 0.97.
Near the faces the distance from one click cannot tell object from background; the intensities can. Per object,
inside its box (method ``refined`` of ``paseg_convert``):

1. the *core*: the geodesic pseudo-foreground, ``s < threshold`` with ``s = d_fg / (d_fg + d_bg)``
   (``point_tools.geodesic.geodesic_share``; d_bg from the box faces and the background clicks);
2. the *surround*: voxels geodesically nearer the background seeds, ``s > BACKGROUND_SHARE``;
3. an intensity model learned from these two samples, per object: per channel, smoothed histograms of the core
   and of the surround, and the log-likelihood ratio ``r(x) = sum_c log(p_core,c(I_c(x)) / p_surround,c(I_c(x)))``
   (naive Bayes over channels, so every channel's contrast counts), and from it the foreground probability
   ``p(x) = sigmoid(r(x))``;
4. a second geodesic split, now over ``p`` and from the whole core: ``q = d_core / (d_core + d_bg)`` with the
   path cost ``(1 - lamb) * euclidean + lamb * |step of p|``: a path through object-like intensity is cheap,
   crossing into background-like intensity is not, so ``q`` reaches out to the faces along the object and stops
   at its edges;
5. foreground = the core, plus the voxels with ``q < share_threshold``, ``s < max_share`` (still on the click's
   side of the first split, which bounds the growth where the intensity model cannot: a neighbour of the same
   intensity) and ``r > min_log_odds`` (the image agrees), peeled by ``erode`` voxels unless the two intensity
   models hardly overlap (``intensity_overlap`` <= ``erode_overlap``). Why the peel: on the tuning set, 50-100% of
   the grown region's false positives lie within one voxel outside the true surface (partial volume, and atlas
   labels that do not follow the template's edges), and taking that band off raises precision from about 0.91 to
   0.98; where object and surround are clearly apart (the ventricles in T1) the band is right and is kept.

The foreground click and the core stay foreground whatever the model says. Everything here is a pure function
of arrays; ``refined_pseudo_label`` applies it per object and assembles the label map with the same rules and
checks as ``point_tools.geodesic.geodesic_pseudo_label``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from scipy import ndimage

from point_tools.clicks import ObjectClicks
from point_tools.geodesic import (DEFAULT_ITERATIONS, DEFAULT_LAMBDA, BoxInputs, box_inputs, check_label_inputs,
                                  geodesic_distance, geodesic_share, given_device, label_objects,
                                  minimum_rule_background)

# Chosen by benchmarks/pseudo_label_tuning.py on real brain MR (benchmarks/results/pseudo_label_methods.md).
DEFAULT_CORE_THRESHOLD = 0.4
DEFAULT_MAX_SHARE = 0.6
DEFAULT_SHARE_THRESHOLD = 0.3
DEFAULT_PROBABILITY_LAMBDA = 0.98
DEFAULT_MIN_LOG_ODDS = 0.0
DEFAULT_ERODE = 1
# Objects whose core and surround intensities overlap less than this (Bhattacharyya coefficient; the ventricles
# against brain tissue in T1: 0.3, the grey nuclei against their surround: 0.5-0.75) keep their grown surface.
DEFAULT_ERODE_OVERLAP = 0.45
# Voxels with a geodesic share above this are the background sample of the intensity model (nearer the box
# faces and background clicks than the foreground click by a margin).
BACKGROUND_SHARE = 0.6
# Histogram bins per channel over the box's normalised range [0, 1], and the Gaussian smoothing (in bins) that
# makes a histogram of a few hundred core voxels a usable density.
HISTOGRAM_BINS = 32
HISTOGRAM_SMOOTHING = 1.0
# Each density gets this share of a uniform density, so that an intensity never seen in one sample has a finite
# log-likelihood ratio (at most about log(1 / floor) per channel).
DENSITY_FLOOR = 1e-3


def check_share(name: str, value: float) -> float:
    """``value`` if it lies in (0, 1]; ValueError naming ``name`` otherwise (NaN included)."""
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value}")
    return value


def _densities(crop: np.ndarray, foreground: np.ndarray, background: np.ndarray, bins: int,
               smoothing: float) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """(bin index per channel and voxel (C, Z, Y, X), [(p_fg, p_bg) per channel]) of the two samples."""
    if crop.ndim != 4 or crop.shape[1:] != foreground.shape or foreground.shape != background.shape:
        raise ValueError(f"crop (C, Z, Y, X) and samples (Z, Y, X) must cover the same box, got {crop.shape}, "
                         f"{foreground.shape}, {background.shape}")
    if not foreground.any() or not background.any():
        raise ValueError("the foreground and background samples must each hold at least one voxel")
    if bins < 2 or not smoothing >= 0:
        raise ValueError(f"bins must be >= 2 and smoothing >= 0, got {bins}, {smoothing}")
    index = np.clip((crop * bins).astype(np.int64), 0, bins - 1)
    densities = []
    for channel in index:
        pair = []
        for sample in (foreground, background):
            histogram = np.bincount(channel[sample], minlength=bins).astype(np.float64)
            if smoothing > 0:
                histogram = ndimage.gaussian_filter1d(histogram, smoothing, mode="constant")
            pair.append((1.0 - DENSITY_FLOOR) * histogram / histogram.sum() + DENSITY_FLOOR / bins)
        densities.append((pair[0], pair[1]))
    return index, densities


def intensity_log_odds(crop: np.ndarray, foreground: np.ndarray, background: np.ndarray,
                       bins: int = HISTOGRAM_BINS, smoothing: float = HISTOGRAM_SMOOTHING) -> np.ndarray:
    """Per-voxel log-likelihood ratio (Z, Y, X) float32 of the foreground vs the background intensity model.

    crop: (C, Z, Y, X), each channel in [0, 1] (values outside are counted in the end bins). foreground,
    background: (Z, Y, X) boolean samples, each non-empty. The densities are per-channel histograms with ``bins``
    bins, smoothed by a Gaussian of ``smoothing`` bins and mixed with ``DENSITY_FLOOR`` of a uniform density;
    channels count as independent (naive Bayes): ``r = sum_c log p_fg,c(I_c) - log p_bg,c(I_c)``. Positive: the
    voxel looks like the foreground sample. Equal samples give 0 everywhere.
    """
    index, densities = _densities(crop, foreground, background, bins, smoothing)
    log_odds = np.zeros(foreground.shape, np.float32)
    for channel, (p_fg, p_bg) in zip(index, densities):
        log_odds += np.log(p_fg / p_bg).astype(np.float32)[channel]
    return log_odds


def intensity_overlap(crop: np.ndarray, foreground: np.ndarray, background: np.ndarray,
                      bins: int = HISTOGRAM_BINS, smoothing: float = HISTOGRAM_SMOOTHING) -> float:
    """Bhattacharyya coefficient in [0, 1] of the two samples' intensity models (``intensity_log_odds``'s):
    ``prod_c sum_b sqrt(p_fg,c(b) * p_bg,c(b))`` (independent channels). 0: separable, 1: the same density."""
    _, densities = _densities(crop, foreground, background, bins, smoothing)
    return float(np.prod([np.sqrt(p_fg * p_bg).sum() for p_fg, p_bg in densities]))


def probability_share(log_odds: np.ndarray, core: np.ndarray, background_seeds: np.ndarray,
                      unit_spacing: Sequence[float], lamb: float, iterations: int = DEFAULT_ITERATIONS,
                      device: torch.device = torch.device("cpu")) -> np.ndarray:
    """Geodesic share ``q = d_core / (d_core + d_bg)`` (Z, Y, X) in [0, 1] over ``p = sigmoid(log_odds)``.

    The distances start from the ``core`` voxels and from the ``background_seeds`` voxels (both (Z, Y, X) bool,
    non-empty; seeds in the core count as core), with path cost ``(1 - lamb) * euclidean (unit_spacing) +
    lamb * |step of p|``, lamb in [0, 1]. 0 in the core, 1 at the background seeds.
    """
    if not core.any() or not (background_seeds & ~core).any():
        raise ValueError("the core and the background seeds must each hold at least one voxel")
    probability = (1.0 / (1.0 + np.exp(-np.clip(log_odds, -30.0, 30.0)))).astype(np.float32)
    tensor = torch.from_numpy(probability)[None, None].to(device)
    d_core = geodesic_distance(tensor, core, unit_spacing, lamb, iterations)
    d_bg = geodesic_distance(tensor, background_seeds & ~core, unit_spacing, lamb, iterations)
    return d_core / np.maximum(d_core + d_bg, np.finfo(np.float32).tiny)


def refine_foreground(crop: np.ndarray, score: np.ndarray, background_seeds: np.ndarray,
                      unit_spacing: Sequence[float], *, threshold: float = DEFAULT_CORE_THRESHOLD,
                      max_share: float = DEFAULT_MAX_SHARE, share_threshold: float = DEFAULT_SHARE_THRESHOLD,
                      lamb: float = DEFAULT_PROBABILITY_LAMBDA, min_log_odds: float = DEFAULT_MIN_LOG_ODDS,
                      erode: int = DEFAULT_ERODE, erode_overlap: float = DEFAULT_ERODE_OVERLAP,
                      background_share: float = BACKGROUND_SHARE, iterations: int = DEFAULT_ITERATIONS,
                      device: torch.device = torch.device("cpu")) -> np.ndarray:
    """Foreground (Z, Y, X) bool of one object's box: the geodesic core grown along its intensity model.

    crop: (C, Z, Y, X), each channel in [0, 1]. score: the geodesic share ``s`` in [0, 1] (0 at the foreground
    click). background_seeds: the box faces and background clicks (Z, Y, X) bool. Steps 1-5 of the module
    docstring: core ``s < threshold``; surround ``s > background_share``; ``q`` by ``probability_share`` with
    ``lamb``; foreground = core | peel(``q < share_threshold`` and ``s < max_share`` and ``r > min_log_odds``), the
    peel being a 6-connected erosion by ``erode`` voxels, skipped when ``intensity_overlap`` <= ``erode_overlap``.
    Where there is nothing to learn from (no core, no surround, no background seed) the core alone is returned.
    """
    if crop.ndim != 4 or crop.shape[1:] != score.shape or score.shape != background_seeds.shape:
        raise ValueError(f"crop {crop.shape}, score {score.shape} and seeds {background_seeds.shape} must cover the "
                         "same box")
    if not 0.0 < threshold <= max_share <= 1.0:
        raise ValueError(f"need 0 < threshold <= max_share <= 1, got threshold {threshold}, max_share {max_share}")
    check_share("share_threshold", share_threshold)
    check_share("background_share", background_share)
    if not 0.0 <= lamb <= 1.0:
        raise ValueError(f"lamb must be in [0, 1], got {lamb}")
    if isinstance(erode, bool) or not isinstance(erode, (int, np.integer)) or erode < 0:
        raise ValueError(f"erode must be an integer >= 0, got {erode!r}")
    core = score < threshold
    surround = score > background_share
    if not core.any() or not surround.any() or not (background_seeds & ~core).any():
        return core
    log_odds = intensity_log_odds(crop, core, surround)
    share = probability_share(log_odds, core, background_seeds, unit_spacing, lamb, iterations, device)
    grown = (share < share_threshold) & (score < max_share) & (log_odds > min_log_odds)
    if erode and intensity_overlap(crop, core, surround) > erode_overlap:
        grown = ndimage.binary_erosion(grown, iterations=int(erode))
    return core | grown


def refined_pseudo_label(image: np.ndarray, spacing: Sequence[float], objects: Sequence[ObjectClicks],
                         num_classes: int = 1, lamb: float = DEFAULT_LAMBDA,
                         threshold: float = DEFAULT_CORE_THRESHOLD, device: str | None = None, *,
                         iterations: int = DEFAULT_ITERATIONS, source: str = "image") -> np.ndarray:
    """Pseudo-label (Z, Y, X) uint8 of an image (C, Z, Y, X) from its objects' clicks, method ``refined``.

    The same values, checks and rules as ``geodesic_pseudo_label`` (0 background, 1..num_classes, num_classes + 1
    ignore; outside every box background; the foreground click always foreground; errors name ``source``); only
    the foreground inside each box differs: ``refine_foreground`` of the geodesic share at ``lamb`` (with
    background seeds), ``threshold`` being the core's threshold. All channels count, in the distances and in
    the intensity model. device: "cpu", "cuda", ...; default CUDA when available.
    """
    def foreground(inputs: BoxInputs, obj: ObjectClicks, torch_device: torch.device) -> np.ndarray:
        score = geodesic_share(inputs, lamb, iterations, torch_device)
        return refine_foreground(box_crop(inputs), score, inputs.bg_seed, inputs.unit_spacing, threshold=threshold,
                                 iterations=iterations, device=torch_device)

    return label_by_object(image, spacing, objects, num_classes, device, source, foreground)


def box_crop(inputs: BoxInputs) -> np.ndarray:
    """The box's crop (C, Z, Y, X) with each channel in [0, 1], as the intensity model wants it
    (``normalise_box`` divides each channel by C, for the distances)."""
    return inputs.crop * len(inputs.crop)


def label_by_object(image: np.ndarray, spacing: Sequence[float], objects: Sequence[ObjectClicks], num_classes: int,
                    device: str | None, source: str,
                    foreground: Callable[[BoxInputs, ObjectClicks, torch.device], np.ndarray]) -> np.ndarray:
    """Pseudo-label (Z, Y, X) uint8 with the geodesic method's checks and rules (``check_label_inputs``,
    ``minimum_rule_background``, ``label_objects``), the foreground inside each object's box being
    ``foreground(box inputs with background seeds, object, torch device)``."""
    image = check_label_inputs(image, spacing, objects, num_classes, source)
    background = minimum_rule_background(image, objects)
    torch_device = given_device(device)
    foregrounds = [(inputs.box, foreground(inputs, obj, torch_device), obj.label) for obj in objects
                   for inputs in [box_inputs(image, ~background, spacing, obj, background_seeds=True)]]
    return label_objects(image.shape[1:], foregrounds, background, objects, num_classes)
