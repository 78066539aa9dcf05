"""Simulate the 7-click protocol (``point_tools.clicks``) from full masks.

Per object: one foreground click at the deepest interior point (largest spacing-aware distance to the
object's boundary) or at a random interior point, and six background clicks one margin beyond the
object's extremes along each axis, at the extreme voxel's other coordinates. Optional jitter (mm) models
annotator noise. Clicks of different objects never share a voxel (an annotation volume holds one per voxel):
a click whose voxel is taken moves to the nearest free one that keeps its meaning (``free_voxel``). Indices are in
numpy (z, y, x) order, spacing likewise.
"""
from __future__ import annotations

import argparse
import os
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from tqdm import tqdm

from point_tools.click_formats import CLICK_FORMATS, FORMAT_CHOICES, click_format
from point_tools.clicks import ClickError, ObjectClicks, validate_objects
from point_tools.image_files import IMAGE_SUFFIXES, image_stem, image_suffix, read_image
from point_tools.options import positive_int


def object_masks(mask: np.ndarray, per: str = "component", min_size_voxels: int = 10,
                 classes: Sequence[int] | None = None) -> list[tuple[int, tuple[slice, ...], np.ndarray]]:
    """The objects of a label mask as (class, bounding-box slices, boolean mask inside the box).

    per="component": each 26-connected component of each class is an object; per="class": all voxels of a
    class form one object. Objects with fewer than ``min_size_voxels`` voxels are skipped.
    """
    if per not in ("component", "class"):
        raise ValueError(f"per must be 'component' or 'class', got {per!r}")
    labels = sorted(int(c) for c in np.unique(mask) if c > 0) if classes is None else [int(c) for c in classes]
    objects = []
    for label in labels:
        is_class = mask == label
        if per == "class":
            components, count = is_class.astype(np.int32), int(is_class.any())
        else:
            components, count = ndimage.label(is_class, structure=np.ones((3, 3, 3), bool))
        for n, box in enumerate(ndimage.find_objects(components, max_label=count), start=1):
            if box is None:
                continue
            inside = components[box] == n
            if int(inside.sum()) >= min_size_voxels:
                objects.append((label, box, inside))
    return objects


def deepest_point(inside: np.ndarray, spacing: Sequence[float]) -> tuple[int, int, int]:
    """Voxel of ``inside`` farthest (in mm) from the object's boundary; the crop's edge counts as outside.

    Ties (flat or tubular objects) go to the deepest voxel nearest the centroid of all deepest voxels.
    """
    depth = ndimage.distance_transform_edt(np.pad(inside, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    deepest = np.argwhere(depth == depth.max())
    centre = deepest.mean(axis=0)
    best = deepest[np.argmin((((deepest - centre) * spacing) ** 2).sum(axis=1))]
    return tuple(int(v) for v in best)  # type: ignore[return-value]


def random_interior_point(inside: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A uniformly random voxel of ``inside`` off its boundary (any voxel of a 1-voxel-thin object)."""
    interior = ndimage.binary_erosion(inside)
    candidates = np.argwhere(interior if interior.any() else inside)
    return tuple(int(v) for v in candidates[rng.integers(len(candidates))])  # type: ignore[return-value]


def jitter_inside(point: tuple[int, int, int], inside: np.ndarray, spacing: np.ndarray, jitter_mm: float,
                  rng: np.random.Generator) -> tuple[int, int, int]:
    """A uniformly random voxel of ``inside`` within ``jitter_mm`` of ``point`` along every axis."""
    candidates = np.argwhere(inside)
    near = np.all(np.abs(candidates - np.asarray(point)) * spacing <= jitter_mm, axis=1)
    candidates = candidates[near]  # never empty: ``point`` itself is inside
    return tuple(int(v) for v in candidates[rng.integers(len(candidates))])  # type: ignore[return-value]


def background_points(inside: np.ndarray, offset: np.ndarray, shape: Sequence[int], spacing: np.ndarray,
                      margin_vox: np.ndarray, jitter_mm: float, rng: np.random.Generator) -> tuple:
    """Six clicks: per axis (low, high), one margin beyond the object's extreme voxel, clipped to the image.

    The extreme voxel is the one nearest the centroid of the object's voxels in the extreme slice. Jitter
    moves a click only outwards along its own axis (inwards would touch or cut the object) and either way
    along the other two.
    """
    coords = np.argwhere(inside) + offset
    upper = np.asarray(shape) - 1
    points = []
    for axis in range(3):
        for side in (-1, 1):
            extreme = coords[:, axis].min() if side < 0 else coords[:, axis].max()
            slab = coords[coords[:, axis] == extreme]
            anchor = slab[np.argmin(((slab - slab.mean(axis=0)) ** 2).sum(axis=1))].astype(float)
            anchor[axis] += side * margin_vox[axis]
            if jitter_mm > 0:
                shift = rng.uniform(-jitter_mm, jitter_mm, 3)
                shift[axis] = side * abs(shift[axis])
                anchor += shift / spacing
            points.append(tuple(int(v) for v in np.clip(np.rint(anchor), 0, upper)))
    return tuple(points)


def free_voxel(point: tuple[int, int, int], taken: set[tuple[int, int, int]], shape: Sequence[int],
               spacing: np.ndarray, allowed: Callable[[tuple[int, int, int]], bool]) -> tuple[int, int, int]:
    """``point``, or if another object's click already took it, a voxel of the image that is ``allowed`` and not
    taken: the nearest in mm (ties in index order) in the smallest cube around ``point`` that has one. An
    annotation volume holds one click per voxel, and adjacent structures (caudate and putamen) can share a
    background click's spot."""
    if point not in taken:
        return point
    centre = np.asarray(point)
    for radius in range(1, max(shape)):
        axis = np.arange(-radius, radius + 1)
        shell = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        shell = shell[np.abs(shell).max(axis=1) == radius]
        for step in shell[np.lexsort((*shell.T[::-1], ((shell * spacing) ** 2).sum(axis=1)))]:
            candidate = tuple(int(v) for v in centre + step)
            if (all(0 <= v < s for v, s in zip(candidate, shape)) and candidate not in taken
                    and allowed(candidate)):
                return candidate  # type: ignore[return-value]
    raise ValueError(f"no free voxel for a click near {point}")


def simulate_clicks(mask: np.ndarray, spacing: Sequence[float], *, per: str = "component",
                    min_size_voxels: int = 10, fg_mode: str = "deepest", seed: int | None = None,
                    margin_mm: float | None = None, jitter_mm: float = 0.0,
                    classes: Sequence[int] | None = None) -> list[ObjectClicks]:
    """7 clicks per object of an integer label mask (Z, Y, X) with voxel spacing (z, y, x) in mm.

    fg_mode: "deepest" (largest distance to the object's boundary, in mm) or "random" (uniform over the
    object's interior, drawn with ``seed``). margin_mm: distance of the background clicks beyond the
    object's extremes (default: one voxel along each axis; at least one voxel). jitter_mm: annotator noise;
    the foreground click stays inside the object, background clicks stay outside it and inside the image.
    classes: which label values are targets (default: every value > 0). Objects are returned class by
    class, components in scan order.
    """
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D (Z, Y, X), got shape {mask.shape}")
    if fg_mode not in ("deepest", "random"):
        raise ValueError(f"fg_mode must be 'deepest' or 'random', got {fg_mode!r}")
    if jitter_mm < 0:
        raise ValueError(f"jitter_mm must be >= 0, got {jitter_mm}")
    spacing = np.asarray(spacing, dtype=float)
    margin_vox = (np.ones(3, int) if margin_mm is None
                  else np.maximum(1, np.rint(margin_mm / spacing)).astype(int))
    rng = np.random.default_rng(seed)
    objects = []
    taken: set[tuple[int, int, int]] = set()  # the clicks of the objects before this one
    for label, box, inside in object_masks(mask, per, min_size_voxels, classes):
        offset = np.array([s.start for s in box])

        def in_object(p: tuple[int, int, int]) -> bool:
            local = np.asarray(p) - offset
            return bool(np.all(local >= 0) and np.all(local < inside.shape) and inside[tuple(local)])

        fg = deepest_point(inside, spacing) if fg_mode == "deepest" else random_interior_point(inside, rng)
        if jitter_mm > 0:
            fg = jitter_inside(fg, inside, spacing, jitter_mm, rng)
        fg = free_voxel(tuple(int(v) for v in np.asarray(fg) + offset), taken, mask.shape, spacing, in_object)
        bg: list[tuple[int, int, int]] = []
        for i, p in enumerate(background_points(inside, offset, mask.shape, spacing, margin_vox, jitter_mm, rng)):
            # Click 2 * axis + high may move within its plane or outwards, never inwards: its box would cut the object.
            axis, outwards = i // 2, 1 if i % 2 else -1
            bg.append(free_voxel(p, taken, mask.shape, spacing,
                                 lambda q: (q[axis] - p[axis]) * outwards >= 0 and not in_object(q)))
        objects.append(ObjectClicks(fg, tuple(bg), label))
        taken.update((fg, *bg))
    if objects:
        validate_objects(objects, mask.shape, "simulated clicks")
    return objects


def _simulate_file(job: tuple[Path, dict]) -> tuple[str, list[ObjectClicks], sitk.Image] | str:
    """(case, objects, mask image) of one mask file, or the problem with it (naming the file)."""
    path, options = job
    try:
        reference = read_image(path)
    except ClickError as error:
        return str(error)
    mask = sitk.GetArrayFromImage(reference)
    if mask.ndim != 3 or not np.issubdtype(mask.dtype, np.integer):
        return f"{path}: expected a 3D integer label mask, got {mask.dtype} of shape {mask.shape}"
    objects = simulate_clicks(mask, reference.GetSpacing()[::-1], **options)
    if not objects:
        return (f"{path}: no object of at least {options['min_size_voxels']} voxels"
                f"{' (the mask is empty)' if not mask.any() else ''}")
    return image_stem(path), objects, reference


def _format_help() -> str:
    """--format's help: each click format's name, what it is and the files it writes."""
    return "; ".join(f"{f.name}: {f.title}, "
                     + (f.file_name() if f.per_case else f"one {f.file_name()} for all cases")
                     + "".join(f" ({alias}: its former name)" for alias in f.aliases) for f in CLICK_FORMATS.values())


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``paseg_simulate_points``."""
    parser = argparse.ArgumentParser(description="Simulate 7 clicks per object (1 foreground, 6 background) "
                                                 "from full label masks.")
    parser.add_argument("-i", "--input", required=True, type=Path,
                        help=f"mask file or folder of masks ({', '.join(IMAGE_SUFFIXES)})")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder")
    parser.add_argument("--format", choices=FORMAT_CHOICES, default="volume",
                        help=f"{_format_help()} (default volume)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random foreground click and the jitter")
    parser.add_argument("--fg_mode", choices=("deepest", "random"), default=None,
                        help="foreground click at the deepest interior point or a random interior one "
                             "(default: random when --seed is given, else deepest)")
    parser.add_argument("--margin_mm", type=float, default=None,
                        help="background clicks this far beyond the object (default: one voxel)")
    parser.add_argument("--jitter_mm", type=float, default=0.0, help="annotator noise in mm (default 0)")
    parser.add_argument("--per", choices=("component", "class"), default="component",
                        help="one object per connected component (default) or per class")
    parser.add_argument("--min_size", type=int, default=10, help="skip objects smaller than this (voxels)")
    parser.add_argument("--classes", type=int, nargs="+", default=None, help="label values to annotate (default all)")
    parser.add_argument("-np", "--num_processes", type=positive_int, default=max(1, min(4, os.cpu_count() or 1)))
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """The command ``paseg_simulate_points``: every mask is read and clicked before anything is written; the
    problems of all masks are reported together (one line each, status 1) and then nothing is written."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input.is_dir():
        files = sorted(p for p in args.input.iterdir() if image_suffix(p) is not None)
    elif args.input.is_file():
        files = [args.input] if image_suffix(args.input) is not None else []
    else:
        parser.error(f"{args.input} does not exist")
    if not files:
        parser.error(f"no mask files ({', '.join(IMAGE_SUFFIXES)}) in {args.input}" if args.input.is_dir()
                     else f"{args.input} is not a mask file ({', '.join(IMAGE_SUFFIXES)})")
    if args.output.exists() and not args.output.is_dir():
        parser.error(f"-o {args.output} is a file; give a folder for the click files")
    options = dict(per=args.per, min_size_voxels=args.min_size, fg_mode=args.fg_mode or ("deepest" if args.seed is None else "random"),
                   seed=args.seed, margin_mm=args.margin_mm, jitter_mm=args.jitter_mm, classes=args.classes)
    jobs = [(path, options) for path in files]
    with Pool(min(args.num_processes, len(jobs))) as pool:
        results = list(tqdm(pool.imap(_simulate_file, jobs), total=len(jobs), desc="simulating"))
    problems = [r for r in results if isinstance(r, str)]
    if problems:
        raise SystemExit(f"paseg_simulate_points: {len(problems)} problem(s), nothing was written:\n  "
                         + "\n  ".join(problems))
    try:
        args.output.mkdir(parents=True, exist_ok=True)
        click_format(args.format).write({case: (objects, reference) for case, objects, reference in results},
                                        args.output)
    except (ClickError, OSError) as error:
        raise SystemExit(f"paseg_simulate_points: {error}") from None


if __name__ == "__main__":
    main()
