"""Click annotation volumes (the format of PA-Seg's published annotations): a label image on the image's grid.

Encoding: 0 = no click; object n (1-based) uses value 2n-1 for its background clicks and 2n for its
foreground click (1/2 for object 1, 3/4 for object 2, ...). Values must be non-negative integers.

Clicks painted as blobs rather than single voxels are accepted:
- foreground (value 2n): all its voxels must form one 26-connected blob; the click is the blob voxel nearest
  (in mm) to the blob's centroid. Two separate blobs are an error (which one is the click?).
- background (value 2n-1): each 6-connected blob is one click, at its voxel nearest to the blob centroid.
  Face connectivity keeps the protocol's six single-voxel clicks apart even for a tiny object, where
  clicks on two axes can touch diagonally.
An object whose two values are both absent is skipped (its index still counts for the class mapping, so a
dataset-wide mapping works for a case lacking one structure); one with only one of the two values is an error.

Classes (multi-class datasets): the ``object_classes`` argument maps object index -> class, or a JSON
sidecar ``CASE.classes.json`` next to ``CASE.nii.gz`` (or .nrrd, .mha, ...) holds
``{"object_classes": {"1": 1, "2": 2}}``. Without either every object is class 1; when both are present
they must agree on every object they both name.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from point_tools.clicks import ClickError, Index, ObjectClicks, resolve_class, validate_objects
from point_tools.geometry import array_shape, grid_mismatch, require_3d
from point_tools.image_files import IMAGE_SUFFIXES, image_stem, image_suffix, read_image

CLASSES_SIDECAR_SUFFIX = ".classes.json"

_FACE = ndimage.generate_binary_structure(3, 1)
_FULL = ndimage.generate_binary_structure(3, 3)


def classes_sidecar(path: str | Path) -> Path:
    """Path of the JSON class sidecar that belongs to the annotation volume ``path``."""
    return Path(path).with_name(image_stem(path) + CLASSES_SIDECAR_SUFFIX)


def read_classes_sidecar(path: str | Path) -> dict[int, int] | None:
    """Object -> class mapping from ``path``'s sidecar, or None if it has none."""
    sidecar = classes_sidecar(path)
    if not sidecar.is_file():
        return None
    try:
        mapping = json.loads(sidecar.read_text())["object_classes"]
        out = {int(k): v for k, v in mapping.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ClickError(f"{sidecar}: not a class sidecar of the form "
                         f'{{"object_classes": {{"1": 1, "2": 2}}}} ({type(e).__name__}: {e})') from None
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in out.values()):
        raise ClickError(f"{sidecar}: classes must be integers >= 1, got {mapping}")
    return out


def _central_voxel(coords: np.ndarray, spacing: np.ndarray) -> Index:
    """The voxel of ``coords`` (N, 3) nearest in mm to their centroid (ties: the first in array order)."""
    d = (((coords - coords.mean(axis=0)) * spacing) ** 2).sum(axis=1)
    return tuple(int(v) for v in coords[int(np.argmin(d))])  # type: ignore[return-value]


def _blobs(coords: np.ndarray, structure: np.ndarray) -> list[np.ndarray]:
    """Connected groups of the voxels ``coords`` (N, 3), labelled within their bounding box only."""
    if len(coords) == 1:
        return [coords]
    low = coords.min(axis=0)
    local = coords - low
    grid = np.zeros(local.max(axis=0) + 1, bool)
    grid[tuple(local.T)] = True
    labels, _ = ndimage.label(grid, structure)
    ids = labels[tuple(local.T)]
    return [coords[ids == i] for i in np.unique(ids)]


def clicks_from_array(arr: np.ndarray, spacing: Sequence[float], source: str,
                      classes: dict[int, int] | None = None) -> list[ObjectClicks]:
    """Objects encoded in an annotation array (z, y, x); ``spacing`` (z, y, x) mm picks blob centres."""
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ClickError(f"{source}: annotation voxels must be integers, got {arr.dtype}")
    flat = np.flatnonzero(arr)
    values = arr.ravel()[flat]
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            raise ClickError(f"{source}: annotation values must be integers (click codes), found {values[bad][0]!r}")
    if (values < 0).any():
        raise ClickError(f"{source}: annotation values must be >= 0, found {values.min()!r}")
    order = np.argsort(values, kind="stable")
    values = values[order].astype(np.int64)
    coords = np.stack(np.unravel_index(flat[order], arr.shape), axis=1)
    spacing_arr = np.asarray(spacing, float)

    def voxels(value: int) -> np.ndarray:
        return coords[np.searchsorted(values, value, "left"):np.searchsorted(values, value, "right")]

    objects, ids = [], []
    for n in np.unique((values + 1) // 2).tolist():
        fg, bg = voxels(2 * n), voxels(2 * n - 1)
        where = f"{source}: object {n} (values {2 * n - 1}/{2 * n})"
        if not len(fg):
            raise ClickError(f"{where}: {len(bg)} background voxel(s) (value {2 * n - 1}) but no foreground click "
                             f"(value {2 * n}){' - is this a segmentation mask?' if len(bg) > 1000 else ''}")
        if not len(bg):
            raise ClickError(f"{where}: a foreground click (value {2 * n}) but no background clicks "
                             f"(value {2 * n - 1})")
        fg_blobs = _blobs(fg, _FULL)
        if len(fg_blobs) > 1:
            raise ClickError(f"{where}: the foreground value {2 * n} is painted in {len(fg_blobs)} separate places; "
                             "one foreground click per object")
        background = tuple(_central_voxel(b, spacing_arr) for b in _blobs(bg, _FACE))
        label = resolve_class(n, None, classes, source)
        objects.append(ObjectClicks(_central_voxel(fg, spacing_arr), background, label))
        ids.append(n)
    validate_objects(objects, arr.shape, source, ids)
    return objects


def read_annotation_volume(path: str | Path, reference: sitk.Image,
                           object_classes: dict[int, int] | None = None) -> list[ObjectClicks]:
    """Objects of the annotation volume ``path``, which must lie on the grid of ``reference``."""
    source = str(path)
    image = read_image(path)
    require_3d(image, source)
    why = grid_mismatch(image, reference)
    if why:
        raise ClickError(f"{source}: annotation grid differs from the image grid: {why}")
    sidecar = read_classes_sidecar(path)
    classes = _merge_mappings(sidecar, object_classes, str(classes_sidecar(path)))
    return clicks_from_array(sitk.GetArrayViewFromImage(image), image.GetSpacing()[::-1], source, classes)


def _merge_mappings(sidecar: dict[int, int] | None, given: dict[int, int] | None, source: str) -> dict[int, int] | None:
    """One object -> class mapping from the sidecar and the caller's; they must agree where both name an object."""
    if sidecar is None or given is None:
        return sidecar if given is None else given
    for obj in sidecar.keys() & given.keys():
        resolve_class(obj, sidecar[obj], given, source)
    return {**sidecar, **given}


def write_annotation_volume(objects: Sequence[ObjectClicks], reference: sitk.Image, path: str | Path) -> None:
    """Write ``objects`` as an annotation volume on ``reference``'s grid, plus a class sidecar if any class != 1."""
    source = str(path)
    if image_suffix(path) is None:
        raise ClickError(f"{source}: an annotation volume is an image file: end its name with one of "
                         f"{', '.join(IMAGE_SUFFIXES)}")
    shape = array_shape(reference)
    validate_objects(objects, shape, source)
    arr = np.zeros(shape, np.uint8 if 2 * len(objects) <= 255 else np.uint16)
    for n, obj in enumerate(objects, start=1):
        for value, points in ((2 * n - 1, obj.background), (2 * n, (obj.foreground,))):
            for p in points:
                if arr[p] not in (0, value):
                    raise ClickError(f"{source}: object {n} puts a click on voxel {p}, already used by object "
                                     f"{(int(arr[p]) + 1) // 2}; the volume format cannot hold both")
                arr[p] = value
    image = sitk.GetImageFromArray(arr)
    image.CopyInformation(reference)
    sidecar = classes_sidecar(path)
    try:
        sitk.WriteImage(image, str(path), useCompression=True)
        if any(obj.label != 1 for obj in objects):
            mapping = {str(n): obj.label for n, obj in enumerate(objects, start=1)}
            sidecar.write_text(json.dumps({"object_classes": mapping}, indent=2) + "\n")
        elif sidecar.exists():
            sidecar.unlink()  # a stale sidecar would give this binary annotation the old classes
    except (RuntimeError, OSError) as e:
        raise ClickError(f"{source}: cannot write the annotation volume ({e})") from None
