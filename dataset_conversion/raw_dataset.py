"""Write an nnU-Net v2 raw dataset of pseudo-labels (``point_tools.pseudo_labels``: geodesic, refined or extremes) from
click-annotated cases.

The layout-specific builders (``paseg_convert``, ``vs_tcia``, ``brats2019``) only find each case's files;
``build_dataset`` does the rest, the same way for all of them (the module of each step in brackets):

1. checks the number of workers (method, lambda, threshold and device were checked when ``settings`` was made:
   ``label_settings``) and the dataset id (``dataset_ids``): an id that ``$nnUNet_raw`` holds is an error
   unless ``overwrite``; one that ``$nnUNet_preprocessed`` or ``$nnUNet_results`` holds under another name is
   always an error (nnU-Net needs one name per id). Temporary folders that an interrupted conversion of the same
   id left behind (its process is gone) are removed first, and said so (``temporary_folders``);
2. checks the case list as a whole (names, endings, channels: ``cases``); the problems the builder found in its
   folders come in with it;
3. in worker processes (``num_processes``, with a progress bar: ``workers``) reads each case once, checks it
   (images, clicks, full label: ``case_reading``) and, if it is sound, computes its pseudo-label
   (``case_conversion``). The problems of all cases are reported together with those of step 2, each naming its
   case and file, and then nothing is written. When step 2 already found problems, the cases are only checked,
   not labelled (reading each image once, not once to check and again to convert, is most of the cost of a
   conversion);
4. builds the dataset in a hidden temporary sibling of the final folder, ``.DatasetXXX_NAME.partial-PID-XXXX``,
   and publishes it with one rename (``temporary_folders``), so nothing half-written is ever visible under
   ``$nnUNet_raw``. Any failure or interruption (Ctrl-C, SIGTERM through ``dataset_conversion.cli.run``) removes
   the temporary folder; a file that cannot be written or a worker that dies is a ``ConversionError``
   (``errors``) naming what failed and where:

       DatasetXXX_NAME/imagesTr/CASE_0000.ext ...  training images, copied unchanged
                       labelsTr/CASE.ext           pseudo-labels: 0 background, 1..K classes, K+1 ignore
                       imagesTs/CASE_0000.ext ...  test images, copied unchanged
                       labelsTs/CASE.ext           their full labels (nnU-Net ignores this folder;
                                                   ``nnUNetv2_evaluate_folder`` compares predictions to it)
                       dataset.json
                       pseudo_label_quality.json   see ``quality_report.quality_summary``
                       previews/CASE.png, overview.png  with ``preview`` (``dataset_conversion.previews``)

5. an object whose pseudo-foreground has fewer than ``quality_report.MIN_FOREGROUND_VOXELS`` voxels (its clicks
   are probably wrong) is listed in the summary and the report; unless ``allow_empty_foreground``,
   ``LittleForegroundError`` then follows the written dataset.
"""
from __future__ import annotations

import functools
import json
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Sequence, Unpack

from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

from point_tools.quality import format_quality_table

from dataset_conversion.case_conversion import (Problem, check_test_case, check_training_case, convert_training_case,
                                                copy_test_case, named)
from dataset_conversion.cases import Case, check_layout
from dataset_conversion.dataset_ids import check_dataset_id, dataset_folder_name, existing_datasets, nnunet_raw
from dataset_conversion.errors import DatasetInputError, problem_list, writing
from dataset_conversion.label_settings import LABEL_OPTIONS, ConversionOptions, LabelSettings, check_workers
from dataset_conversion.quality_report import (MIN_FOREGROUND_VOXELS, QUALITY_REPORT, LittleForegroundError,
                                               little_foreground, quality_summary)
from dataset_conversion.temporary_folders import hidden_sibling, publish, remove_stale_temporaries
from dataset_conversion.workers import in_workers, worker_pool


def _check_cases(train: Sequence[Case], test: Sequence[Case], settings: LabelSettings,
                 pool: ProcessPoolExecutor | None) -> list[str]:
    """The problems of every case, found by reading and checking it (no labelling, nothing written)."""
    rows = in_workers(functools.partial(named, check_training_case, settings=settings), train, pool, "checking")
    rows += in_workers(functools.partial(named, check_test_case, settings=settings), test, pool, "checking test")
    return [r.message for r in rows if isinstance(r, Problem)]


def _convert_into(out: Path, train: Sequence[Case], test: Sequence[Case], ending: str, settings: LabelSettings,
                  pool: ProcessPoolExecutor | None, preview: bool = False) -> list[dict]:
    """Fill the dataset folder ``out``; returns the report rows of the training cases (``convert_training_case``).

    DatasetInputError lists the problems of every case that has one (the caller removes ``out``).
    """
    subfolders = ["imagesTr", "labelsTr"] + ["imagesTs"] * bool(test) + ["labelsTs"] * any(c.truth for c in test)
    for sub in subfolders:
        with writing(out / sub, "create"):
            (out / sub).mkdir()
    rows = in_workers(functools.partial(named, convert_training_case, out=out, ending=ending, settings=settings,
                                        preview=preview), train, pool, "pseudo-labels")
    rows += in_workers(functools.partial(named, copy_test_case, out=out, ending=ending, settings=settings), test,
                       pool, "test cases")
    problems = [r.message for r in rows if isinstance(r, Problem)]
    if problems:
        raise DatasetInputError(problem_list(problems))
    return [r for r in rows if r is not None]


def build_dataset(train: Sequence[Case], test: Sequence[Case], dataset_id: int, name: str, *,
                  classes: Sequence[str] = ("foreground",), channel_names: Sequence[str] | None = None,
                  settings: LabelSettings | None = None, num_processes: int = 1, overwrite: bool = False,
                  description: str | None = None, problems: Sequence[str] = (),
                  allow_empty_foreground: bool = False, preview: bool = False) -> Path:
    """Write ``$nnUNet_raw/DatasetXXX_NAME`` from ``train`` (clicks -> pseudo-labels) and ``test`` cases (the steps
    of the module docstring).

    classes: names of classes 1..K (``settings.num_classes`` must be K). channel_names: one per image channel
    (default "image" for one channel, "channel0", ... for several); nnU-Net normalises a channel named "CT"
    with its CT scheme and others by z-score. problems: what the caller found wrong with its folders (reported
    with the problems of the cases). ``preview``: also draw the pseudo-labels (``previews/``). Returns the dataset
    folder.

    Raises DatasetInputError (``SettingError`` for the workers; the dataset id; the inputs, every problem listed)
    or ConversionError (a write failed, a worker died) with nothing written, or LittleForegroundError after writing
    the dataset unless ``allow_empty_foreground``.
    """
    started = time.perf_counter()
    check_workers(num_processes)
    settings = settings or LabelSettings(num_classes=len(classes))
    folder_name = dataset_folder_name(dataset_id, name)
    raw = nnunet_raw()
    if settings.num_classes != len(classes):
        raise DatasetInputError(f"{len(classes)} class name(s) {list(classes)} for num_classes={settings.num_classes}")
    remove_stale_temporaries(raw, dataset_id)
    check_dataset_id(raw, dataset_id, folder_name, overwrite)
    layout_problems, ending, num_channels = check_layout(train, test, classes, channel_names)
    problems = [*problems, *layout_problems]
    names = channel_names or (["image"] if num_channels == 1 else [f"channel{c}" for c in range(num_channels)])
    labels = {"background": 0, **{c: i for i, c in enumerate(classes, start=1)}, "ignore": len(classes) + 1}
    final = raw / folder_name
    tmp = None
    try:
        # The pool closes (its workers finish) before any clean-up below, so nothing writes into a removed folder.
        with worker_pool(num_processes, len(train) + len(test), settings.device) as pool:
            if problems:
                raise DatasetInputError(problem_list(problems + _check_cases(train, test, settings, pool)))
            tmp = hidden_sibling(final, "partial")
            begun = time.perf_counter()
            rows = _convert_into(tmp, train, test, ending, settings, pool, preview)
        labelled = time.perf_counter()
        if preview:
            from dataset_conversion.previews import write_overview

            overview = write_overview(tmp, [case.name for case in train])
        with writing(tmp / "dataset.json"):
            generate_dataset_json(str(tmp), dict(enumerate(names)), labels, len(train), ending,
                                  dataset_name=folder_name, description=description, license="as the source images",
                                  converted_by="nnunetv2-paseg", numTest=len(test),
                                  pseudo_labels={"method": f"{settings.method} (point_tools.pseudo_labels)",
                                                 "lambda": settings.lamb, "threshold": settings.threshold})
        with writing(tmp / QUALITY_REPORT):
            (tmp / QUALITY_REPORT).write_text(json.dumps(quality_summary(rows), indent=2) + "\n")
        # ``overwrite``: whatever holds the id now (check_dataset_id's list may be stale after a long conversion).
        publish(tmp, final, existing_datasets(raw, dataset_id) if overwrite else ())
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(f"Checked and labelled {len(train)} case(s) in {labelled - begun:.1f} s "
          f"({(labelled - begun) / max(1, len(train)):.2f} s/case, {num_processes} worker(s))")
    print(f"Wrote {final}: {len(train)} training case(s), {len(test)} test case(s), {num_channels} channel(s) "
          f"{names}, labels {labels}, in {time.perf_counter() - started:.1f} s")
    measured = [r for r in rows if "fg_precision" in r]
    if measured:
        print(f"Pseudo-label quality against full labels ({final / QUALITY_REPORT}):")
        print(format_quality_table(measured))
    if preview:
        shown = final / overview.relative_to(tmp)
        print(f"Pictures of the pseudo-labels: {shown.parent}/CASE.png; all cases on one sheet: {shown}")
    weak = little_foreground(rows)
    if weak and not allow_empty_foreground:
        raise LittleForegroundError(final, weak)
    if weak:
        print(f"{len(weak)} object(s) with fewer than {MIN_FOREGROUND_VOXELS} pseudo-foreground voxels (allowed): "
              + ", ".join(f"case {case} object {n} ({voxels})" for case, n, _, voxels in weak))
    return final


def build_one_class_dataset(find_cases: Callable[[], tuple[list[Case], list[Case]]], dataset_id: int, name: str, *,
                            class_name: str, channel_names: Sequence[str], description: str,
                            truth_values: dict[int, int] | None = None,
                            **options: Unpack[ConversionOptions]) -> Path:
    """``build_dataset`` for a public dataset's layout with one foreground class (VS, BraTS): the settings are
    checked before ``find_cases`` reads a folder, and the description says which pseudo-labels were made.
    truth_values: as ``LabelSettings``'s."""
    settings = LabelSettings(num_classes=1, truth_values=truth_values,
                             **{k: v for k, v in options.items() if k in LABEL_OPTIONS})
    train, test = find_cases()
    return build_dataset(train, test, dataset_id, name, classes=(class_name,), channel_names=channel_names,
                         settings=settings, description=f"{description}, {settings.method} pseudo-labels from "
                                                        "PA-Seg's 7-point annotations",
                         **{k: v for k, v in options.items() if k not in LABEL_OPTIONS})
