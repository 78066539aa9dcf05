"""One case into the dataset folder: its images copied, its pseudo-label (training) or full label (test) written,
and its row of the quality report. Each function runs in a worker process (``dataset_conversion.workers``)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import SimpleITK as sitk

from point_tools.clicks import ClickError
from point_tools.geodesic import object_foreground_voxels
from point_tools.pseudo_labels import pseudo_label
from point_tools.quality import pseudo_label_quality

from dataset_conversion.case_reading import read_test_case, read_training_case
from dataset_conversion.cases import Case
from dataset_conversion.errors import ConversionError, writing
from dataset_conversion.label_settings import LabelSettings


@dataclass(frozen=True)
class Problem:
    """Why a case cannot be converted (``case NAME: file: what``)."""

    message: str


def _write_label(array: np.ndarray, reference: sitk.Image, path: Path) -> None:
    label = sitk.GetImageFromArray(array.astype(np.uint8, copy=False))
    label.CopyInformation(reference)
    with writing(path):
        sitk.WriteImage(label, str(path), useCompression=True)


def _copy_images(case: Case, folder: Path, ending: str) -> None:
    for channel, path in enumerate(case.images):
        target = folder / f"{case.name}_{channel:04d}{ending}"
        with writing(target):
            shutil.copyfile(path, target)


def check_training_case(case: Case, settings: LabelSettings) -> None:
    """Read and check a training case without labelling it (ClickError naming the file)."""
    read_training_case(case, settings)


def convert_training_case(case: Case, out: Path, ending: str, settings: LabelSettings,
                          preview: bool = False) -> dict:
    """Check the case, copy the images, write the pseudo-label (by ``settings.method``; and its picture, with
    ``preview``); returns its report row: ``case``, ``objects``, ``classes`` and ``foreground_voxels`` (per object,
    ``object_foreground_voxels``), and the quality against the full label if there is one (``point_tools.quality``).

    Every input is checked (ClickError) before anything is computed or written.
    """
    images, array, objects, truth = read_training_case(case, settings)
    pseudo = pseudo_label(array, images[0].GetSpacing()[::-1], objects, method=settings.method,
                          num_classes=settings.num_classes, lamb=settings.lamb, threshold=settings.threshold,
                          device=settings.device, source=f"case {case.name}")
    _write_label(pseudo, images[0], out / "labelsTr" / f"{case.name}{ending}")
    _copy_images(case, out / "imagesTr", ending)
    if preview:
        from dataset_conversion.previews import write_case_preview  # matplotlib: imported only when used

        write_case_preview(out, case.name, array, images[0].GetSpacing()[::-1], objects, pseudo, settings.num_classes)
    row = {"case": case.name, "objects": len(objects), "classes": [obj.label for obj in objects],
           "foreground_voxels": object_foreground_voxels(pseudo, objects)}
    if truth is not None:
        row.update(pseudo_label_quality(pseudo, truth, settings.num_classes + 1))
    return row


def check_test_case(case: Case, settings: LabelSettings) -> None:
    """Read and check a test case without copying it (ClickError naming the file)."""
    read_test_case(case, settings)


def copy_test_case(case: Case, out: Path, ending: str, settings: LabelSettings) -> None:
    """Check the case, copy the images to imagesTs and the full label, as classes 0..K in the dataset's ending, to
    labelsTs."""
    images, truth = read_test_case(case, settings)
    _copy_images(case, out / "imagesTs", ending)
    if truth is not None:
        _write_label(truth, images[0], out / "labelsTs" / f"{case.name}{ending}")


def named(fn: Callable, case: Case, **kwargs) -> object:
    """``fn(case, **kwargs)``; a ClickError becomes the case's Problem, a ConversionError (which names its file)
    passes, and any other error names the case (worker tracebacks do not say which case)."""
    try:
        return fn(case, **kwargs)
    except ClickError as e:
        return Problem(f"case {case.name}: {e}")
    except ConversionError:
        raise
    except Exception as e:
        raise RuntimeError(f"case {case.name}: {type(e).__name__}: {e}") from e
