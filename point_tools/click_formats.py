"""The click formats: one registry through which every tool reads and writes click annotations.

Each entry of ``CLICK_FORMATS`` is a ``ClickFormat``: its name, the file suffixes it owns, whether a file holds one
case (``CASE<suffix>``) or all cases of a dataset, its reader and writer, and the companion files that may sit beside
its files. ``paseg_convert`` finds each case's click file through it, ``paseg_simulate_points`` takes its
``--format`` choices and file names from it, and README's "Click formats" section lists exactly its formats (a test
checks). Adding a format is its reader/writer module, one entry here and one paragraph in README.

The modules state their conventions (``point_tools.io_volume``, ``point_tools.io_slicer``, ``point_tools.io_csv``);
``point_tools.geometry`` maps world mm <-> voxels. Every problem with a file is a ``ClickError`` naming it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import SimpleITK as sitk

from point_tools.clicks import ClickError, ObjectClicks
from point_tools.image_files import DETACHED_DATA_SUFFIXES, IMAGE_SUFFIXES, suffix_in
from point_tools.io_csv import csv_cases, read_csv_clicks, write_csv
from point_tools.io_slicer import read_slicer_markups, write_slicer_markups
from point_tools.io_volume import CLASSES_SIDECAR_SUFFIX, read_annotation_volume, write_annotation_volume

# {case: (objects, the image they belong to)}: what a writer gets.
Cases = Mapping[str, tuple[Sequence[ObjectClicks], sitk.Image]]
# A file that holds every case of a dataset is written as clicks<suffix> (e.g. clicks.csv).
DATASET_FILE_STEM = "clicks"


@dataclass(frozen=True)
class ClickFormat:
    """One click format.

    name: what ``--format`` calls it; aliases: former names that ``--format`` still accepts.
    title: what it is, for --help texts.
    suffixes: the file-name endings it owns (matched ignoring case); files are written with the first.
    per_case: True: one file per case, ``CASE<suffix>``, read by ``reader(path, reference, object_classes)`` and
        written by ``writer(objects, reference, path)``. False: one file for all cases of a dataset, read by
        ``reader(path, reference, case, object_classes)``, written by ``writer({case: (objects, reference)}, path)``,
        and ``cases(path)`` lists the case ids it holds.
    companions: suffixes of files that belong beside this format's files without being click files.
    """

    name: str
    title: str
    suffixes: tuple[str, ...]
    per_case: bool
    reader: Callable[..., list[ObjectClicks]]
    writer: Callable[..., None]
    cases: Callable[[str | Path], list[str]] | None = None
    companions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def file_name(self, case: str = "CASE") -> str:
        """The name of the file ``write`` puts the clicks of ``case`` in: ``CASE<suffix>``, or ``clicks<suffix>`` for
        a format of one file for all cases."""
        return f"{case if self.per_case else DATASET_FILE_STEM}{self.suffixes[0]}"

    def read(self, path: str | Path, reference: sitk.Image, case: str | None = None,
             object_classes: dict[int, int] | None = None) -> list[ObjectClicks]:
        """The objects of ``path`` on the image ``reference`` (``read_clicks`` says what the arguments mean)."""
        if self.per_case:
            return self.reader(path, reference, object_classes)
        return self.reader(path, reference, case, object_classes)

    def write(self, cases: Cases, folder: str | Path) -> list[Path]:
        """Write ``cases`` into the existing ``folder`` (one ``CASE<suffix>`` per case, or one ``clicks<suffix>``);
        returns the files written."""
        folder = Path(folder)
        if not self.per_case:
            path = folder / self.file_name()
            self.writer(cases, path)
            return [path]
        paths = []
        for case, (objects, reference) in cases.items():
            paths.append(folder / self.file_name(case))
            self.writer(objects, reference, paths[-1])
        return paths


CLICK_FORMATS: dict[str, ClickFormat] = {f.name: f for f in (
    ClickFormat("volume", "annotation volume", IMAGE_SUFFIXES, True, read_annotation_volume, write_annotation_volume,
                companions=(CLASSES_SIDECAR_SUFFIX, *DETACHED_DATA_SUFFIXES)),
    ClickFormat("slicer", "3D Slicer markups", (".mrk.json",), True, read_slicer_markups, write_slicer_markups,
                aliases=("mrk",)),
    ClickFormat("csv", "CSV in world mm", (".csv",), False, read_csv_clicks, write_csv, cases=csv_cases),
)}
# Every name --format accepts: the formats' names, then their former names.
FORMAT_CHOICES = (*CLICK_FORMATS, *(alias for f in CLICK_FORMATS.values() for alias in f.aliases))
_BY_SUFFIX = {suffix: f for f in CLICK_FORMATS.values() for suffix in f.suffixes}


def click_format(name: str) -> ClickFormat:
    """The format called ``name`` or, formerly, ``name``; ValueError listing the names for any other."""
    for f in CLICK_FORMATS.values():
        if name == f.name or name in f.aliases:
            return f
    raise ValueError(f"unknown click format {name!r}; expected one of {', '.join(FORMAT_CHOICES)}")


def format_of(path: str | Path) -> ClickFormat:
    """The format of the click file ``path``, from its suffix; ClickError for a file no format owns."""
    suffix = suffix_in(path, tuple(_BY_SUFFIX))
    if suffix is None:
        raise ClickError(f"{path}: unknown click file type; expected one of {', '.join(_BY_SUFFIX)}")
    return _BY_SUFFIX[suffix]


def read_clicks(path: str | Path, reference: sitk.Image, case: str | None = None,
                object_classes: dict[int, int] | None = None) -> list[ObjectClicks]:
    """The validated objects that the click file ``path`` holds for the image ``reference``.

    ``case`` selects the case in a file of all cases (optional when it holds one; ignored by per-case formats).
    ``object_classes`` maps 1-based object index -> class; it must agree with classes the file states.
    """
    fmt = format_of(path)
    if not Path(path).is_file():
        raise ClickError(f"{path}: no such file")
    if reference.GetDimension() != 3:
        raise ClickError(f"{path}: the reference image is {reference.GetDimension()}D; clicks need a 3D image")
    return fmt.read(path, reference, case, object_classes)
