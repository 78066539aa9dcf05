"""Reading and writing click annotations: one entry point over the three formats of SPEC section 1.

- annotation volumes (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``, ``.mhd``): ``point_tools.io_volume``
- 3D Slicer markups (``.mrk.json``): ``point_tools.io_slicer``
- CSV (``.csv``): ``point_tools.io_csv``
Each module's docstring states its conventions; ``point_tools.geometry`` maps world mm <-> voxels.
Every problem with a file is a ``ClickError`` naming it.
"""
from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from point_tools.clicks import ClickError, ObjectClicks
from point_tools.geometry import index_to_world, world_to_index
from point_tools.io_csv import csv_cases, read_csv_clicks, write_csv
from point_tools.io_slicer import read_slicer_markups, write_slicer_markups
from point_tools.io_volume import (CLASSES_SIDECAR_SUFFIX, VOLUME_SUFFIXES, classes_sidecar, read_annotation_volume,
                                   write_annotation_volume)

SLICER_SUFFIX = ".mrk.json"
CSV_SUFFIX = ".csv"
CLICK_SUFFIXES = VOLUME_SUFFIXES + (SLICER_SUFFIX, CSV_SUFFIX)

__all__ = ["CLASSES_SIDECAR_SUFFIX", "CLICK_SUFFIXES", "CSV_SUFFIX", "SLICER_SUFFIX", "VOLUME_SUFFIXES",
           "ClickError", "ObjectClicks", "classes_sidecar", "click_format", "csv_cases", "index_to_world",
           "read_clicks", "world_to_index", "write_annotation_volume", "write_csv", "write_slicer_markups"]


def click_format(path: str | Path) -> str:
    """'volume', 'slicer' or 'csv' from the file name; ClickError for anything else."""
    name = Path(path).name.lower()
    if name.endswith(SLICER_SUFFIX):
        return "slicer"
    if name.endswith(CSV_SUFFIX):
        return "csv"
    if name.endswith(VOLUME_SUFFIXES):
        return "volume"
    raise ClickError(f"{path}: unknown click file type; expected one of {', '.join(CLICK_SUFFIXES)}")


def read_clicks(path: str | Path, reference: sitk.Image, case: str | None = None,
                object_classes: dict[int, int] | None = None) -> list[ObjectClicks]:
    """The validated objects that the click file ``path`` holds for the image ``reference``.

    ``case`` selects the rows of a CSV (optional when the CSV holds one case; ignored by the other formats).
    ``object_classes`` maps 1-based object index -> class; it must agree with classes the file states.
    """
    kind = click_format(path)
    if not Path(path).is_file():
        raise ClickError(f"{path}: no such file")
    if reference.GetDimension() != 3:
        raise ClickError(f"{path}: the reference image is {reference.GetDimension()}D; clicks need a 3D image")
    if kind == "slicer":
        return read_slicer_markups(path, reference, object_classes)
    if kind == "csv":
        return read_csv_clicks(path, reference, case, object_classes)
    return read_annotation_volume(path, reference, object_classes)
