"""Reading a case once and checking everything about it (images, clicks, full label); ``ClickError`` names the
file and what is wrong with it."""
from __future__ import annotations

import zlib
from pathlib import Path

import nibabel
import numpy as np
import SimpleITK as sitk

from point_tools.click_formats import read_clicks
from point_tools.clicks import ClickError
from point_tools.geometry import grid_mismatch, require_3d
from point_tools.image_files import read_image

from dataset_conversion.cases import Case
from dataset_conversion.label_settings import LabelSettings


def _read_3d(path: Path) -> sitk.Image:
    image = read_image(path)
    require_3d(image, str(path))
    return image


def _truth_classes(array: np.ndarray, settings: LabelSettings, source: str) -> np.ndarray:
    """Full label array mapped to 0..K (uint8); ClickError naming ``source`` for a value that is not a class."""
    values = np.unique(array)
    if np.issubdtype(values.dtype, np.floating) and not np.array_equal(values, np.round(values)):
        fractional = values[values != np.round(values)]
        raise ClickError(f"{source}: full label values must be integers, found {fractional[:3].tolist()}")
    values = values.astype(np.int64)
    if settings.truth_values is None:
        bad = values[(values < 0) | (values > settings.num_classes)]
        if bad.size:
            raise ClickError(f"{source}: full label values {bad[:5].tolist()} are not classes "
                             f"0..{settings.num_classes}")
        return array.astype(np.uint8)
    bad = [v for v in values.tolist() if v not in settings.truth_values]
    if bad:
        raise ClickError(f"{source}: full label values {bad[:5]} are not among {sorted(settings.truth_values)}")
    lookup = np.zeros(int(values.max()) + 1, np.uint8)
    for raw_value, cls in settings.truth_values.items():
        if 0 <= raw_value < lookup.size:
            lookup[raw_value] = cls
    return lookup[array.astype(np.int64)]


def _load_case_images(case: Case) -> tuple[list[sitk.Image], np.ndarray]:
    """Channel images and the stacked (C, Z, Y, X) float32 array; ClickError for unreadable or mismatched files."""
    images = [_read_3d(p) for p in case.images]
    for path, image in zip(case.images[1:], images[1:]):
        why = grid_mismatch(image, images[0])
        if why:
            raise ClickError(f"{path}: grid differs from channel 0 ({case.images[0].name}): {why}")
    array = np.stack([sitk.GetArrayFromImage(i) for i in images]).astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        channel = int(np.flatnonzero(~np.isfinite(array).reshape(len(images), -1).all(axis=1))[0])
        raise ClickError(f"{case.images[channel]}: NaN or infinite intensities")
    return images, array


def _nifti_nonfinite(path: Path) -> bool:
    """Whether a float NIfTI file stores NaN or infinite voxels.

    ITK's NIfTI reader turns them into 0, so SimpleITK cannot see them, but nibabel (nnU-Net's NibabelIO, and
    most other tools) reads them as they are.
    """
    if not path.name.lower().endswith((".nii", ".nii.gz")):
        return False
    try:
        image = nibabel.load(path)
        if image.get_data_dtype().kind != "f":
            return False
        return not np.isfinite(np.asanyarray(image.dataobj)).all()
    except (EOFError, zlib.error) as e:  # SimpleITK reads a truncated .nii.gz without a word, the rest as zeros
        raise ClickError(f"could not read {path}: its compressed data is cut short or damaged ({e})") from None
    except (OSError, ValueError, nibabel.filebasedimages.ImageFileError):
        return False  # SimpleITK read it; what nibabel cannot read, it cannot misread either


def _load_truth(case: Case, reference: sitk.Image, settings: LabelSettings) -> np.ndarray:
    truth = _read_3d(case.truth)
    why = grid_mismatch(truth, reference)
    if why:
        raise ClickError(f"{case.truth}: full label grid differs from the image ({case.images[0].name}): {why}")
    return _truth_classes(sitk.GetArrayViewFromImage(truth), settings, str(case.truth))


def _read_objects(case: Case, reference: sitk.Image, settings: LabelSettings) -> list:
    mapping = None if settings.object_classes is None else dict(settings.object_classes)
    objects = read_clicks(case.clicks, reference, case=case.name, object_classes=mapping)
    for n, obj in enumerate(objects, start=1):
        if obj.label > settings.num_classes:
            raise ClickError(f"{case.clicks}: object {n} has class {obj.label} but the dataset has "
                             f"{settings.num_classes} class(es)")
    return objects


def _checked_images(case: Case) -> tuple[list[sitk.Image], np.ndarray]:
    """``_load_case_images`` plus the NaN check that SimpleITK cannot do for NIfTI."""
    images, array = _load_case_images(case)
    for path in case.images:
        if _nifti_nonfinite(path):
            raise ClickError(f"{path}: NaN or infinite intensities")
    return images, array


def read_training_case(case: Case,
                       settings: LabelSettings) -> tuple[list[sitk.Image], np.ndarray, list, np.ndarray | None]:
    """(channel images, (C, Z, Y, X) array, objects, full label or None) of a training case; ClickError naming the
    file for anything that cannot make its pseudo-label."""
    images, array = _checked_images(case)
    if array.size and all(channel.min() == channel.max() for channel in array):
        what = f"every voxel is {float(array.flat[0]):g}" if len(array) == 1 else "every channel is constant"
        raise ClickError(f"{case.images[0]}: {what}; a constant image has nothing to segment")
    objects = _read_objects(case, images[0], settings)
    truth = None if case.truth is None else _load_truth(case, images[0], settings)
    return images, array, objects, truth


def read_test_case(case: Case, settings: LabelSettings) -> tuple[list[sitk.Image], np.ndarray | None]:
    """(channel images, full label or None) of a test case; ClickError naming the file for what is wrong."""
    images, _ = _checked_images(case)
    return images, None if case.truth is None else _load_truth(case, images[0], settings)
