"""Geodesic pseudo-labels from 7 clicks per object, with FastGeodis on CPU or CUDA: PA-Seg's expansion of the
clicks by geodesic distance (Zhai et al., IEEE TMI 2023, arXiv 2208.05669).

Per object, inside the inclusive box spanned by its background clicks: intensities are normalised per
channel to the box's robust range, the generalised geodesic distance ``(1 - lamb) * euclidean +
lamb * |intensity step|`` is computed from the foreground click and, with ``background_seeds``, from
the box faces (which lie beyond the object's extremes, so outside it); foreground is what is clearly
nearer the foreground click. Outside every box is background, the rest of a box is ``ignore``, and
voxels at the image minimum in every channel that reach the image's faces through such voxels (the empty outside
of a skull-stripped or masked image) are background (``minimum_rule_background``: not in the box of an object
clicked at the minimum). The foreground click itself is always foreground.

Distances are in units of the box's longest side (mm / longest side in mm), so one lambda and one
threshold fit small and large objects alike.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import FastGeodis
import numpy as np
import torch
from scipy import ndimage

from point_tools.clicks import ClickError, ObjectClicks, validate_objects

# Chosen by benchmarks/pseudo_label_tuning.py on real brain MR (results in
# benchmarks/results/pseudo_label_tuning.md): precision first, then recall.
# With background seeds, lambda 0.5 and threshold 0.4 gave mean foreground precision 0.97 and recall 0.18
# (the best recall at precision >= 0.95 with a margin); without them the best was precision 0.96 and
# recall 0.17 with a worse worst case.
DEFAULT_LAMBDA = 0.5
DEFAULT_THRESHOLD = 0.4
DEFAULT_BACKGROUND_SEEDS = True
# Raster-scan passes (each sweeps all 6 directions): 1, 2 and 4 gave the same precision/recall at the
# defaults on the tuning set (0.970 / 0.176-0.177, C-shaped ventricles included); the cost is linear.
DEFAULT_ITERATIONS = 1
# Per-box robust intensity range (percentiles) mapped to [0, 1].
NORMALISE_PERCENTILES = (1.0, 99.0)
# Seeds get distance 0 through FastGeodis' soft mask scaled by v; v must exceed any path cost.
_V = 1e10


def check_lambda(lamb: float) -> float:
    """``lamb`` if it is a weight in [0, 1]; ValueError otherwise (NaN included)."""
    if not 0.0 <= lamb <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lamb}")
    return lamb


def check_threshold(threshold: float) -> float:
    """``threshold`` if it lies in (0, 1); ValueError otherwise (NaN included)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    return threshold


def available_devices() -> list[str]:
    """The devices FastGeodis can run on here: cpu, and cuda:0, cuda:1, ... when CUDA is available."""
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return ["cpu"] + cuda


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def given_device(device: str | None) -> torch.device:
    """``device`` taken as given (checked where it entered, by ``resolve_device``), or ``default_device()`` for
    None: what the pseudo-label functions use, so that they do not ask the driver once per image."""
    return default_device() if device is None else torch.device(device)


def resolve_device(device: str | None) -> torch.device:
    """The requested device, or ``default_device()`` when none was requested.

    ValueError, saying which devices are available, for a name torch does not know, a device other than cpu or
    cuda, CUDA on a machine without it, or a CUDA index beyond the devices present. Only a CUDA request (or none)
    asks the driver, so that a process converting on the CPU can still fork its workers.
    """
    if device is None:
        return default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        resolved = None
    if resolved is None or resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"{device!r} is not a device FastGeodis runs on; available here: "
                         f"{', '.join(available_devices())}")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device found"
            raise ValueError(f"{device!r}: CUDA is not available on this machine ({why}); available here: cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"{device!r}: no such CUDA device; available here: {', '.join(available_devices())}")
    return resolved


def normalise_box(box: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Map each channel of ``box`` (C, Z, Y, X) to [0, 1] by its percentiles over ``valid`` voxels, then / C.

    Dividing by the channel count keeps the summed (L1) intensity step of multi-channel images on the
    same scale as one channel, so lambda means the same for any number of channels.
    """
    out = np.empty(box.shape, np.float32)
    for c, channel in enumerate(box):
        values = channel[valid] if valid.any() else channel.ravel()
        low, high = np.percentile(values, NORMALISE_PERCENTILES)
        scale = 1.0 / (high - low) if high > low else 0.0
        out[c] = np.clip((channel - low) * scale, 0.0, 1.0) / len(box)
    return out


def geodesic_distance(image: torch.Tensor, seeds: np.ndarray, spacing: Sequence[float], lamb: float,
                      iterations: int) -> np.ndarray:
    """Generalised geodesic distance (Z, Y, X) from the True voxels of ``seeds`` over ``image`` (1, C, Z, Y, X)."""
    soft_mask = torch.from_numpy((~seeds).astype(np.float32))[None, None].to(image.device)
    distance = FastGeodis.generalised_geodesic3d(image, soft_mask, list(map(float, spacing)), _V, float(lamb),
                                                 iterations)
    return distance[0, 0].cpu().numpy()


def box_faces(low: Sequence[int], high: Sequence[int], shape: Sequence[int]) -> np.ndarray:
    """Boolean mask (box-sized) of the box faces that are not on the image border.

    A face at a background click lies beyond the object's extreme, so outside the object; a face on the
    image border may cut an object that the image cuts, so it is not used.
    """
    size = [h - lo + 1 for lo, h in zip(low, high)]
    faces = np.zeros(size, bool)
    for axis in range(3):
        index = [slice(None)] * 3
        if low[axis] > 0:
            index[axis] = 0
            faces[tuple(index)] = True
        if high[axis] < shape[axis] - 1:
            index[axis] = -1
            faces[tuple(index)] = True
    return faces


class BoxInputs(NamedTuple):
    """One object's box, prepared for distances: ``box`` (slices of the image), ``crop`` (C, Z, Y, X) normalised by
    ``normalise_box`` (each channel in [0, 1 / C]), ``unit_spacing`` (spacing / the box's longest side in mm),
    ``fg_seed`` (the foreground click) and ``bg_seed`` (box faces off the image border and the background clicks,
    without the foreground click; empty when background seeds are not used), both (Z, Y, X) bool."""

    box: tuple[slice, ...]
    crop: np.ndarray
    unit_spacing: list[float]
    fg_seed: np.ndarray
    bg_seed: np.ndarray


def box_inputs(image: np.ndarray, valid: np.ndarray, spacing: Sequence[float], obj: ObjectClicks,
               background_seeds: bool) -> BoxInputs:
    """The box of ``obj`` in ``image`` (C, Z, Y, X) with its normalised intensities and seeds (``BoxInputs``).

    ``valid``: voxels (Z, Y, X) used for the intensity normalisation.
    """
    low, high = obj.box()
    box = tuple(slice(lo, h + 1) for lo, h in zip(low, high))
    crop = normalise_box(image[(slice(None),) + box], valid[box])
    extent = max(s * (h - lo + 1) for s, lo, h in zip(spacing, low, high))
    fg_seed = np.zeros(crop.shape[1:], bool)
    fg_seed[tuple(f - lo for f, lo in zip(obj.foreground, low))] = True
    bg_seed = box_faces(low, high, image.shape[1:]) if background_seeds else np.zeros_like(fg_seed)
    if background_seeds:
        for point in obj.background:
            bg_seed[tuple(p - lo for p, lo in zip(point, low))] = True
        bg_seed &= ~fg_seed
    return BoxInputs(box, crop, [s / extent for s in spacing], fg_seed, bg_seed)


def distance_share(image: torch.Tensor, fg_seed: np.ndarray, bg_seed: np.ndarray, spacing: Sequence[float],
                   lamb: float, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """(d_fg, score in [0, 1]) per voxel (Z, Y, X) over ``image`` (1, C, Z, Y, X): the geodesic distance from the
    ``fg_seed`` voxels and ``geodesic_share``'s score, d_fg / (d_fg + d_bg) with d_bg from the ``bg_seed`` voxels
    (disjoint from ``fg_seed``), d_fg / max d_fg when there are none."""
    d_fg = geodesic_distance(image, fg_seed, spacing, lamb, iterations)
    if not bg_seed.any():  # no background seeds asked for, or the box is the whole image
        return d_fg, d_fg / max(float(d_fg.max()), np.finfo(np.float32).tiny)
    d_bg = geodesic_distance(image, bg_seed, spacing, lamb, iterations)
    return d_fg, d_fg / np.maximum(d_fg + d_bg, np.finfo(np.float32).tiny)


def geodesic_share(inputs: BoxInputs, lamb: float, iterations: int, device: torch.device) -> np.ndarray:
    """Score in [0, 1] per box voxel (Z, Y, X); foreground is score < threshold (see ``foreground_score``)."""
    tensor = torch.from_numpy(inputs.crop)[None].to(device)
    return distance_share(tensor, inputs.fg_seed, inputs.bg_seed, inputs.unit_spacing, lamb, iterations)[1]


def foreground_score(image: np.ndarray, valid: np.ndarray, spacing: Sequence[float], obj: ObjectClicks,
                     lamb: float, background_seeds: bool, iterations: int,
                     device: torch.device) -> tuple[tuple[slice, ...], np.ndarray]:
    """(box slices, score in [0, 1] per box voxel) of one object; foreground is score < threshold.

    Without background seeds: score = d_fg / max(d_fg in the box) (the reference rule). With background
    seeds: score = d_fg / (d_fg + d_bg), the foreground click's share of the two distances; 0.5 is the
    geodesic Voronoi split, lower is stricter. ``valid``: voxels used for the intensity normalisation.
    """
    inputs = box_inputs(image, valid, spacing, obj, background_seeds)
    return inputs.box, geodesic_share(inputs, lamb, iterations, device)


def combine_objects(shape: Sequence[int], foregrounds: Sequence[tuple[tuple[slice, ...], np.ndarray, int]],
                    at_minimum: np.ndarray, num_classes: int) -> np.ndarray:
    """Label (uint8) from per-object (box slices, boolean foreground in the box, class).

    0 outside every box and at ``at_minimum``; class c where only class-c objects call a voxel foreground;
    num_classes + 1 (ignore) elsewhere in a box, including foreground claimed by two different classes.
    """
    in_box = np.zeros(shape, bool)
    fg_class = np.zeros(shape, np.int16)  # 0 none, c > 0 class c, -1 conflict between classes
    for box, foreground, label in foregrounds:
        in_box[box] = True
        region = fg_class[box]
        claimed = region[foreground]
        region[foreground] = np.where((claimed == 0) | (claimed == label), label, -1)
    out = np.where(in_box, np.uint8(num_classes + 1), np.uint8(0))
    out[fg_class > 0] = fg_class[fg_class > 0]
    out[at_minimum] = 0
    return out


def minimum_intensity_mask(image: np.ndarray) -> np.ndarray:
    """Voxels (Z, Y, X) of ``image`` (C, Z, Y, X) at their channel's minimum in every channel that are 6-connected
    through such voxels to a face of the image: the empty outside of the body.

    Minimum-intensity holes enclosed by the body are not included: a brain mask that cuts into the ventricles
    (FSL's MNI152 template zeroes part of its ventricles) leaves no evidence there either way.
    """
    at_minimum = np.all(image == image.min(axis=(1, 2, 3), keepdims=True), axis=0)
    components, _ = ndimage.label(at_minimum)
    faces = np.concatenate([np.moveaxis(components, axis, 0)[end].ravel()
                            for axis in range(components.ndim) for end in (0, -1)])
    touching = np.unique(faces)
    return np.isin(components, touching[touching > 0])


def minimum_rule_background(image: np.ndarray, objects: Sequence[ObjectClicks]) -> np.ndarray:
    """Voxels (Z, Y, X) that the minimum-intensity rule makes background.

    ``minimum_intensity_mask``'s (the empty outside of the body), except inside the box of an
    object whose foreground click is itself at the minimum: that object is made of minimum-intensity voxels (air
    in CT at -1024, a clamped or constant image), and the rule would erase it.
    """
    at_minimum = minimum_intensity_mask(image)
    background = at_minimum.copy()
    for obj in objects:
        if at_minimum[obj.foreground]:
            low, high = obj.box()
            background[tuple(slice(lo, h + 1) for lo, h in zip(low, high))] = False
    return background


def object_foreground_voxels(label: np.ndarray, objects: Sequence[ObjectClicks]) -> list[int]:
    """Per object, the size in voxels of its pseudo-foreground in ``label``: the voxels of its class in its box
    that are 26-connected to its foreground click (0 when the click is not of its class)."""
    counts = []
    for obj in objects:
        low, high = obj.box()
        region = label[tuple(slice(lo, h + 1) for lo, h in zip(low, high))] == obj.label
        click = tuple(f - lo for f, lo in zip(obj.foreground, low))
        if not region[click]:
            counts.append(0)
            continue
        components, _ = ndimage.label(region, structure=np.ones((3, 3, 3), bool))
        counts.append(int(np.count_nonzero(components == components[click])))
    return counts


def geodesic_pseudo_label(image: np.ndarray, spacing: Sequence[float], objects: Sequence[ObjectClicks],
                          num_classes: int = 1, lamb: float = DEFAULT_LAMBDA, threshold: float = DEFAULT_THRESHOLD,
                          device: str | None = None, *, background_seeds: bool = DEFAULT_BACKGROUND_SEEDS,
                          iterations: int = DEFAULT_ITERATIONS, source: str = "image") -> np.ndarray:
    """Pseudo-label (Z, Y, X) uint8 of an image (C, Z, Y, X) from its objects' clicks.

    Values: 0 background (outside every box, or by ``minimum_rule_background``), 1..num_classes foreground of
    that class, num_classes + 1 ignore (inside a box, not foreground). Where boxes overlap, foreground wins over
    unlabelled and foreground of two different classes becomes ignore. The foreground click is certain: it is
    always foreground of its object's class (ignore only where objects of two classes click the same voxel).
    spacing: (z, y, x) in mm. lamb (lambda) in [0, 1]: 0 is the Euclidean distance, 1 the pure intensity path
    cost. threshold in (0, 1): foreground is ``foreground_score`` < threshold. device: "cpu", "cuda", ...;
    default CUDA when available. The settings are taken as given: they are checked where they enter a program
    (``check_lambda``, ``check_threshold``, ``resolve_device``; ``dataset_conversion.label_settings`` does it for
    the converters), not once per image. The image and clicks are checked here; ``source`` names the case in
    error messages.
    """
    image = check_label_inputs(image, spacing, objects, num_classes, source)
    background = minimum_rule_background(image, objects)
    torch_device = given_device(device)
    foregrounds = []
    for obj in objects:
        box, score = foreground_score(image, ~background, spacing, obj, lamb, background_seeds, iterations,
                                      torch_device)
        foregrounds.append((box, score < threshold, obj.label))
    return label_objects(image.shape[1:], foregrounds, background, objects, num_classes)


def check_label_inputs(image: np.ndarray, spacing: Sequence[float], objects: Sequence[ObjectClicks],
                       num_classes: int, source: str) -> np.ndarray:
    """The image (C, Z, Y, X) as float32 if the image and clicks of a pseudo-label are usable; ValueError or
    ClickError naming ``source`` and the problem otherwise (shape, spacing, classes, NaN, clicks). The settings
    (lambda, threshold, device) are not checked here: they are checked where they enter a program."""
    image = np.asarray(image)
    if image.ndim != 4:
        raise ValueError(f"{source}: image must be (C, Z, Y, X), got shape {image.shape}")
    if len(spacing) != 3 or not all(s > 0 for s in spacing):
        raise ValueError(f"{source}: spacing must be 3 positive values (z, y, x), got {tuple(spacing)}")
    if num_classes < 1 or num_classes + 1 > np.iinfo(np.uint8).max:
        raise ValueError(f"num_classes must be in 1..254, got {num_classes}")
    image = image.astype(np.float32, copy=False)
    if not np.isfinite(image).all():
        raise ValueError(f"{source}: the image contains NaN or infinite intensities")
    validate_objects(objects, image.shape[1:], source)
    for n, obj in enumerate(objects, start=1):
        if not 1 <= obj.label <= num_classes:
            raise ClickError(f"{source}: object {n} has class {obj.label}, outside 1..{num_classes}")
    return image


def label_objects(shape: Sequence[int], foregrounds: Sequence[tuple[tuple[slice, ...], np.ndarray, int]],
                  background: np.ndarray, objects: Sequence[ObjectClicks], num_classes: int) -> np.ndarray:
    """``combine_objects``, then every foreground click set to its object's class (ignore where objects of two
    classes click the same voxel): the click is certain whatever a method decided around it."""
    label = combine_objects(shape, foregrounds, background, num_classes)
    clicked: dict[tuple[int, ...], set[int]] = {}
    for obj in objects:
        clicked.setdefault(tuple(obj.foreground), set()).add(obj.label)
    for voxel, classes in clicked.items():
        label[voxel] = classes.pop() if len(classes) == 1 else num_classes + 1
    return label
