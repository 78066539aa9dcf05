"""Write an nnU-Net v2 raw dataset of pseudo-labels (``point_tools.pseudo_labels``: geodesic or refined) from
click-annotated cases.

The layout-specific builders (``paseg_convert``, ``vs_tcia``, ``brats2019``) only find each case's files;
``build_dataset`` does the rest, the same way for all of them:

1. checks the settings (method, lambda, threshold, device, workers) and the dataset id: an id that ``$nnUNet_raw`` holds
   is an error unless ``overwrite``; one that ``$nnUNet_preprocessed`` or ``$nnUNet_results`` holds under another
   name is always an error (nnU-Net needs one name per id). Temporary folders that an interrupted conversion of
   the same id left behind (its process is gone) are removed first, and said so;
2. checks the case list as a whole (names, endings, channels); the problems the builder found in its folders
   come in with it;
3. in worker processes (``num_processes``, with a progress bar) reads each case once, checks it (images, clicks,
   full label) and, if it is sound, computes its pseudo-label. The problems of all cases are reported together
   with those of steps 2, each naming its case and file, and then nothing is written. When step 2 already found
   problems, the cases are only checked, not labelled (reading each image once, not once to check and again to
   convert, is most of the cost of a conversion);
4. builds the dataset in a hidden temporary sibling of the final folder, ``.DatasetXXX_NAME.partial-PID-XXXX``,
   and publishes it with one rename, so nothing half-written is ever visible under ``$nnUNet_raw``. Any failure
   or interruption (Ctrl-C, SIGTERM through ``dataset_conversion.cli.run``) removes the temporary folder; a file
   that cannot be written or a worker that dies is a ``ConversionError`` naming what failed and where:

       DatasetXXX_NAME/imagesTr/CASE_0000.ext ...  training images, copied unchanged
                       labelsTr/CASE.ext           pseudo-labels: 0 background, 1..K classes, K+1 ignore
                       imagesTs/CASE_0000.ext ...  test images, copied unchanged
                       labelsTs/CASE.ext           their full labels (nnU-Net ignores this folder;
                                                   ``nnUNetv2_evaluate_folder`` compares predictions to it)
                       dataset.json
                       pseudo_label_quality.json   see ``quality_summary``
                       previews/CASE.png, overview.png  with ``preview`` (``dataset_conversion.previews``)

5. an object whose pseudo-foreground has fewer than ``MIN_FOREGROUND_VOXELS`` voxels (its clicks are probably
   wrong) is listed in the summary and the report; unless ``allow_empty_foreground``, ``LittleForegroundError``
   then follows the written dataset.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import sys
import uuid
import time
import zlib
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import nibabel
import numpy as np
import SimpleITK as sitk
from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json
from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO
from tqdm import tqdm

from point_tools.clicks import ClickError
from point_tools.geodesic import (DEFAULT_LAMBDA, DEFAULT_THRESHOLD, check_lambda, check_threshold,
                                  object_foreground_voxels, resolve_device)
from point_tools.pseudo_labels import DEFAULT_METHOD, check_method, pseudo_label
from point_tools.geometry import grid_mismatch, require_3d
from point_tools.click_formats import read_clicks
from point_tools.image_files import IMAGE_SUFFIXES, itk_reason, read_image, suffix_in
from point_tools.quality import format_quality_table, mean_quality, pseudo_label_quality

# The image suffixes whose 3D images nnU-Net reads too (SimpleITKIO's, and NIfTI through NibabelIO): a dataset's
# images must have one of them.
NNUNET_ENDINGS = tuple(s for s in IMAGE_SUFFIXES
                       if s in {*SimpleITKIO.supported_file_endings, *NibabelIO.supported_file_endings})
QUALITY_REPORT = "pseudo_label_quality.json"
# An object whose pseudo-foreground (the voxels of its class connected to its click) is smaller than this is
# reported: the click alone or a speck beside it is no object's core, but the sign of misplaced clicks, an object
# hardly brighter or darker than its surroundings, or a threshold set too strict. Any object worth 7 clicks
# spans more than 4 voxels.
MIN_FOREGROUND_VOXELS = 5
_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_TEMPORARY = re.compile(r"\.(?P<dataset>Dataset\d{3}_.+)\.(?P<kind>partial|replaced)-(?:(?P<pid>\d+)-)?[0-9a-f]+")
_NNUNET_FOLDERS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


class DatasetInputError(ValueError):
    """Inputs that cannot make a dataset; the message lists every problem with its case and file."""


class ConversionError(RuntimeError):
    """The conversion failed for a reason outside the inputs (a file that could not be written, a worker process
    that died); the message says what failed and where. Nothing was written."""


class LittleForegroundError(Exception):
    """The dataset was written, but some objects' pseudo-labels have fewer than ``MIN_FOREGROUND_VOXELS``
    foreground voxels. ``dataset``: its folder; ``objects``: (case, object number, class, voxels) of each."""

    def __init__(self, dataset: Path, objects: Sequence[tuple[str, int, int, int]]):
        listed = "\n  ".join(f"case {case}: object {n} (class {cls}): {voxels} foreground voxel(s)"
                             for case, n, cls, voxels in objects)
        super().__init__(f"wrote {dataset}, but {len(objects)} object(s) have fewer than {MIN_FOREGROUND_VOXELS} "
                         f"pseudo-foreground voxels (misplaced clicks? see {dataset / QUALITY_REPORT}):\n  {listed}"
                         f"\nCheck them; --allow_empty_foreground accepts them.")
        self.dataset = dataset
        self.objects = list(objects)


@dataclass(frozen=True)
class Case:
    """The files of one case.

    images: one file per channel, in channel order, all with the same ending.
    clicks: the click annotation (any format of ``point_tools.click_formats``); None for a test case.
    truth: full label map with values 0..K (or raw values mapped by ``LabelSettings.truth_values``):
        for a training case it feeds the quality report, for a test case it goes to ``labelsTs``.
    """

    name: str
    images: tuple[Path, ...]
    clicks: Path | None = None
    truth: Path | None = None


@dataclass(frozen=True)
class LabelSettings:
    """How pseudo-labels are made and full labels read.

    num_classes: K. object_classes: object index -> class for click files that do not say (see
    ``point_tools.click_formats.read_clicks``). method (``point_tools.pseudo_labels.METHODS``), lamb, threshold,
    device: passed to ``point_tools.pseudo_labels.pseudo_label``.
    truth_values: raw value -> class for full labels (e.g. BraTS {0: 0, 1: 1, 2: 1, 4: 1}); a value it does not
    list is an error. None: full labels already hold 0..K.
    """

    num_classes: int = 1
    object_classes: Mapping[int, int] | None = None
    lamb: float = DEFAULT_LAMBDA
    threshold: float = DEFAULT_THRESHOLD
    device: str | None = None
    truth_values: Mapping[int, int] | None = None
    method: str = DEFAULT_METHOD


def image_ending(path: str | os.PathLike) -> str | None:
    """The nnU-Net file ending of ``path`` (``.nii.gz``, ``.nrrd``, ...), or None if nnU-Net cannot read it."""
    return suffix_in(path, NNUNET_ENDINGS)


def nnunet_raw() -> Path:
    """``$nnUNet_raw`` as an existing folder."""
    raw = os.environ.get("nnUNet_raw")
    if not raw:
        raise DatasetInputError("nnUNet_raw is not set: export nnUNet_raw=/path/to/nnUNet_raw (see nnU-Net's "
                                "documentation/set_environment_variables.md)")
    if not Path(raw).is_dir():
        raise DatasetInputError(f"nnUNet_raw={raw} is not a folder")
    return Path(raw)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``DatasetXXX_NAME`` as nnU-Net spells it (three-digit id)."""
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int) or not 1 <= dataset_id <= 999:
        raise DatasetInputError(f"dataset id must be an integer in 1..999 (nnU-Net names datasets with three "
                                f"digits), got {dataset_id!r}")
    if not _DATASET_NAME.fullmatch(name or ""):
        raise DatasetInputError(f"dataset name {name!r}: use letters, digits, '_', '-' and '.' only")
    return f"Dataset{dataset_id:03d}_{name}"


def existing_datasets(root: Path, dataset_id: int) -> list[Path]:
    """Folders of ``root`` that nnU-Net would take for dataset ``dataset_id``, whatever their name."""
    return sorted(p for p in root.glob(f"Dataset{dataset_id:03d}_*") if p.is_dir())


def check_dataset_id(raw: Path, dataset_id: int, folder_name: str, overwrite: bool) -> list[Path]:
    """The datasets of ``raw`` that the new dataset ``folder_name`` replaces; DatasetInputError if the id is taken.

    Taken: by a dataset in ``raw`` (unless ``overwrite``), or by a folder of another name in
    ``$nnUNet_preprocessed`` or ``$nnUNet_results`` (where set): nnU-Net would then find two names for one id
    ("More than one dataset name found"). ``overwrite`` replaces only the raw dataset, never preprocessed data or
    trained models.
    """
    existing = existing_datasets(raw, dataset_id)
    if existing and not overwrite:
        raise DatasetInputError(f"dataset id {dataset_id} already exists: {', '.join(map(str, existing))} "
                                "(--overwrite replaces it)")
    clashes = [f"{path} ({variable})" for variable in _NNUNET_FOLDERS[1:] if os.environ.get(variable)
               for path in existing_datasets(Path(os.environ[variable]), dataset_id) if path.name != folder_name]
    if clashes:
        raise DatasetInputError(f"dataset id {dataset_id} is already used under another name than {folder_name}: "
                                f"{', '.join(clashes)}; nnU-Net needs one name per id: use that name, another id, "
                                "or remove the folder")
    return existing


def check_settings(settings: LabelSettings, num_processes: int) -> None:
    """DatasetInputError listing every setting that cannot work (method, lambda, threshold, device, worker count)."""
    problems = []
    for check, value in ((check_method, settings.method), (check_lambda, settings.lamb),
                         (check_threshold, settings.threshold)):
        try:
            check(value)
        except ValueError as e:
            problems.append(str(e))
    if settings.device is not None:
        try:
            resolve_device(settings.device)
        except ValueError as e:
            problems.append(f"device {e}")
    if isinstance(num_processes, bool) or not isinstance(num_processes, int) or num_processes < 1:
        problems.append(f"the number of worker processes must be an integer >= 1, got {num_processes!r}")
    if problems:
        raise DatasetInputError(problem_list(problems))


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def remove_stale_temporaries(raw: Path, dataset_id: int) -> None:
    """Clean up after conversions of ``dataset_id`` that were killed (SIGKILL, power loss) before their own
    clean-up ran, saying what was done.

    A ``.DatasetXXX_*.partial-PID-*`` folder whose process is gone is removed. A ``.replaced-PID-*`` folder holds
    an old dataset that a replacement moved aside: it is removed if a dataset with this id is in place (the
    replacement finished), else the old dataset is put back. Folders of a process that still runs are left alone.
    """
    for path in sorted(raw.glob(f".Dataset{dataset_id:03d}_*")):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or not path.is_dir():
            continue
        if match["pid"] and _process_running(int(match["pid"])) and int(match["pid"]) != os.getpid():
            print(f"{path} belongs to a conversion that is still running (process {match['pid']}); left alone")
            continue
        old = path / match["dataset"]
        if match["kind"] == "replaced" and old.is_dir() and not existing_datasets(raw, dataset_id):
            os.replace(old, raw / old.name)
            print(f"restored {raw / old.name} from {path}, which an interrupted replacement left behind")
        shutil.rmtree(path, ignore_errors=True)
        print(f"{'could not remove' if path.exists() else 'removed'} {path}, left behind by an interrupted conversion")


# --------------------------------------------------------------------------------------------- checks


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


def _read_training_case(case: Case, settings: LabelSettings) -> tuple[list[sitk.Image], np.ndarray, list,
                                                                         np.ndarray | None]:
    """(channel images, (C, Z, Y, X) array, objects, full label or None) of a training case; ClickError naming the
    file for anything that cannot make its pseudo-label."""
    images, array = _checked_images(case)
    if array.size and all(channel.min() == channel.max() for channel in array):
        what = f"every voxel is {float(array.flat[0]):g}" if len(array) == 1 else "every channel is constant"
        raise ClickError(f"{case.images[0]}: {what}; a constant image has nothing to segment")
    objects = _read_objects(case, images[0], settings)
    truth = None if case.truth is None else _load_truth(case, images[0], settings)
    return images, array, objects, truth


@dataclass(frozen=True)
class Problem:
    """Why a case cannot be converted (``case NAME: file: what``)."""

    message: str


def _check_layout(train: Sequence[Case], test: Sequence[Case], classes: Sequence[str],
                  channel_names: Sequence[str] | None) -> tuple[list[str], str | None, int]:
    """(problems of the case list as a whole, file ending, channel count)."""
    problems = []
    if not train:
        problems.append("no training cases")
    seen: dict[str, str] = {}
    for split, cases in (("training", train), ("test", test)):
        for case in cases:
            if case.name in seen:
                problems.append(f"case {case.name}: duplicate case id ({seen[case.name]} and {split})")
            seen[case.name] = split
            if split == "training" and case.clicks is None:
                problems.append(f"case {case.name}: no click annotation")
    endings = {}
    for case in (*train, *test):
        if not case.images:
            problems.append(f"case {case.name}: no image files")
        for path in case.images:
            ending = image_ending(path)
            if ending is None:
                problems.append(f"case {case.name}: {path}: not an image nnU-Net reads "
                                f"(endings {', '.join(NNUNET_ENDINGS)})")
            else:
                endings.setdefault(ending, path)
    if len(endings) > 1:
        problems.append("images have different file endings (nnU-Net needs one): "
                        + ", ".join(f"{e} ({p})" for e, p in endings.items()))
    channels = {len(c.images) for c in (*train, *test)}
    if len(channels) > 1:
        counts = {c.name: len(c.images) for c in (*train, *test)}
        usual = max(channels, key=lambda n: sum(v == n for v in counts.values()))
        problems += [f"case {name}: {n} channel(s), other cases have {usual}"
                     for name, n in counts.items() if n != usual]
    num_channels = max(channels, default=0)
    if channel_names is not None and len(channel_names) != num_channels:
        problems.append(f"{len(channel_names)} channel name(s) {list(channel_names)} for {num_channels} channel(s)")
    if not classes or len(set(classes)) != len(classes) or {"background", "ignore"} & set(classes):
        problems.append(f"class names {list(classes)} must be distinct, at least one, and not 'background' or 'ignore'")
    return problems, next(iter(endings), None), num_channels


def problem_list(problems: Sequence[str]) -> str:
    return f"{len(problems)} problem(s) found, nothing was written:\n  " + "\n  ".join(problems)


# ----------------------------------------------------------------------------------------- conversion


@contextlib.contextmanager
def _writing(path: Path, action: str = "write") -> Iterator[None]:
    """Turn a failure to write ``path`` (a full disk, no permission; OSError, or ITK's RuntimeError) into a
    ConversionError "could not ACTION PATH: reason"."""
    try:
        yield
    except OSError as e:
        raise ConversionError(f"could not {action} {path}: {e.strerror or e}") from None
    except RuntimeError as e:
        raise ConversionError(f"could not {action} {path}: {itk_reason(e)}") from None


def _write_label(array: np.ndarray, reference: sitk.Image, path: Path) -> None:
    label = sitk.GetImageFromArray(array.astype(np.uint8, copy=False))
    label.CopyInformation(reference)
    with _writing(path):
        sitk.WriteImage(label, str(path), useCompression=True)


def _copy_images(case: Case, folder: Path, ending: str) -> None:
    for channel, path in enumerate(case.images):
        target = folder / f"{case.name}_{channel:04d}{ending}"
        with _writing(target):
            shutil.copyfile(path, target)


def check_training_case(case: Case, settings: LabelSettings) -> None:
    """Read and check a training case without labelling it (ClickError naming the file)."""
    _read_training_case(case, settings)


def convert_training_case(case: Case, out: Path, ending: str, settings: LabelSettings,
                          preview: bool = False) -> dict:
    """Check the case, copy the images, write the pseudo-label (and its picture, with ``preview``); returns its
    report row: ``case``, ``objects``, ``classes`` and ``foreground_voxels`` (per object,
    ``object_foreground_voxels``), and the quality against the full label if there is one (``point_tools.quality``).

    Every input is checked (ClickError) before anything is computed or written.
    """
    images, array, objects, truth = _read_training_case(case, settings)
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


def _read_test_case(case: Case, settings: LabelSettings) -> tuple[list[sitk.Image], np.ndarray | None]:
    """(channel images, full label or None) of a test case; ClickError naming the file for what is wrong."""
    images, _ = _checked_images(case)
    return images, None if case.truth is None else _load_truth(case, images[0], settings)


def check_test_case(case: Case, settings: LabelSettings) -> None:
    """Read and check a test case without copying it (ClickError naming the file)."""
    _read_test_case(case, settings)


def copy_test_case(case: Case, out: Path, ending: str, settings: LabelSettings) -> None:
    """Check the case, copy the images to imagesTs and the full label, as classes 0..K in the dataset's ending, to
    labelsTs."""
    images, truth = _read_test_case(case, settings)
    _copy_images(case, out / "imagesTs", ending)
    if truth is not None:
        _write_label(truth, images[0], out / "labelsTs" / f"{case.name}{ending}")


def _init_worker(threads: int) -> None:
    import torch  # workers share the cores: one torch pool per worker would oversubscribe them

    torch.set_num_threads(threads)
    # The main process handles Ctrl-C and SIGTERM: it kills the workers and removes the temporary folder. The
    # terminal, ``timeout`` and schedulers signal the whole process group; a worker that ended on the signal itself
    # could be noticed (as a dead worker) before the main process runs its handler, so workers ignore both.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def _workers(num_processes: int, num_items: int, device: str | None) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for the whole build, or None to work in-process; an exception (or Ctrl-C, SIGTERM) that
    leaves the block kills them first.

    For ``device="cpu"`` on Linux they are forked: this process has imported torch but run nothing on it yet, and
    a spawned worker would spend seconds importing torch and nnU-Net again (as long as converting ten cases).
    Otherwise they are spawned, as nnU-Net does, because a process that may have touched CUDA cannot be forked.
    """
    if num_processes <= 1 or num_items <= 1:
        yield None
        return
    processes = min(num_processes, num_items)
    threads = max(1, (os.cpu_count() or 1) // processes)
    method = "fork" if device == "cpu" and sys.platform == "linux" else "spawn"
    pool = ProcessPoolExecutor(processes, multiprocessing.get_context(method), _init_worker, (threads,))
    try:
        yield pool
    except BaseException:  # the manager thread, not this one, cancels the cases not started (shutdown below)
        # An error or an interruption ends the build: stop the workers now, not after their current case, and before
        # the caller removes the folder they write into. This also ends the workers of a pool interrupted while it
        # started them, which would otherwise wait for work forever, and the interpreter's exit for them.
        for process in list(pool._processes.values()):  # no public way before Python 3.14's terminate_workers
            process.kill()
            process.join()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_workers(fn: Callable, cases: Sequence[Case], pool: ProcessPoolExecutor | None, desc: str) -> list:
    """``[fn(c) for c in cases]``, in ``pool`` if there is one, with a progress bar.

    An error ends it (``_workers`` then stops the pool and drops the cases not yet started); a worker that dies
    (killed, out of memory) is a ConversionError naming the cases that were not finished, not a hang.
    """
    if not cases:
        return []
    # The bar closes while an error unwinds, so that the error's message is the last line on the terminal.
    with tqdm(total=len(cases), desc=desc, unit="case") as bar:
        if pool is None:
            results = []
            for case in cases:
                results.append(fn(case))
                bar.update()
            return results
        futures: dict[Future, Case] = {pool.submit(fn, c): c for c in cases}
        try:
            for future in as_completed(futures):
                future.result()
                bar.update()
        except BrokenProcessPool:
            unfinished = [c.name for f, c in futures.items() if f.exception() is not None]
            listed = ", ".join(unfinished[:5]) + (f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else "")
            raise ConversionError(f"a worker process died (killed by a signal, or by the system for lack of "
                                  f"memory) before case(s) {listed} were converted; rerun, with fewer "
                                  "worker processes (-np) if memory is short") from None
        # Any other error leaves the cases not yet started to ``_workers``, which stops the pool: futures cancelled
        # here could race with the pool's own clean-up of dead workers (Python 3.11 then prints an
        # InvalidStateError traceback from its manager thread).
    return [f.result() for f in futures]


def _named(fn: Callable, case: Case, **kwargs) -> object:
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


def _hidden_sibling(path: Path, what: str) -> Path:
    """A new empty folder beside ``path`` that nnU-Net does not take for a dataset (it does not start with Dataset),
    named with this process's id so that a later run can tell whether it is stale (``remove_stale_temporaries``)."""
    sibling = path.with_name(f".{path.name}.{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with _writing(path.parent, "create a folder in"):
        sibling.mkdir()
    return sibling


def _publish(tmp: Path, final: Path, replace: Iterable[Path]) -> None:
    """Rename ``tmp`` to ``final``, first moving the datasets ``replace`` aside (and deleting them after)."""
    moved = []
    try:
        for old in replace:
            aside = _hidden_sibling(old, "replaced")
            with _writing(old, "move aside"):
                os.replace(old, aside / old.name)
            moved.append((aside, old))
        with _writing(final, "rename the finished dataset to"):
            os.replace(tmp, final)
    except BaseException:
        for aside, old in moved:
            os.replace(aside / old.name, old)
            aside.rmdir()
        raise
    for aside, _ in moved:
        shutil.rmtree(aside)


def _check_cases(train: Sequence[Case], test: Sequence[Case], settings: LabelSettings,
                 pool: ProcessPoolExecutor | None) -> list[str]:
    """The problems of every case, found by reading and checking it (no labelling, nothing written)."""
    rows = _in_workers(functools.partial(_named, check_training_case, settings=settings), train, pool, "checking")
    rows += _in_workers(functools.partial(_named, check_test_case, settings=settings), test, pool, "checking test")
    return [r.message for r in rows if isinstance(r, Problem)]


def _convert_into(out: Path, train: Sequence[Case], test: Sequence[Case], ending: str, settings: LabelSettings,
                  pool: ProcessPoolExecutor | None, preview: bool = False) -> list[dict]:
    """Fill the dataset folder ``out``; returns the report rows of the training cases (``convert_training_case``).

    DatasetInputError lists the problems of every case that has one (the caller removes ``out``).
    """
    subfolders = ["imagesTr", "labelsTr"] + ["imagesTs"] * bool(test) + ["labelsTs"] * any(c.truth for c in test)
    for sub in subfolders:
        with _writing(out / sub, "create"):
            (out / sub).mkdir()
    rows = _in_workers(functools.partial(_named, convert_training_case, out=out, ending=ending, settings=settings,
                                         preview=preview), train, pool, "pseudo-labels")
    rows += _in_workers(functools.partial(_named, copy_test_case, out=out, ending=ending, settings=settings), test,
                        pool, "test cases")
    problems = [r.message for r in rows if isinstance(r, Problem)]
    if problems:
        raise DatasetInputError(problem_list(problems))
    return [r for r in rows if r is not None]


def little_foreground(rows: Sequence[dict]) -> list[tuple[str, int, int, int]]:
    """(case, object number, class, voxels) of the objects with fewer than MIN_FOREGROUND_VOXELS foreground voxels."""
    return [(r["case"], n, cls, voxels) for r in rows
            for n, (cls, voxels) in enumerate(zip(r["classes"], r["foreground_voxels"]), start=1)
            if voxels < MIN_FOREGROUND_VOXELS]


def quality_summary(rows: Sequence[dict]) -> dict:
    """The report's JSON (``pseudo_label_quality.json``), written for every dataset:

    - ``min_foreground_voxels``: MIN_FOREGROUND_VOXELS;
    - ``little_foreground``: the objects with fewer foreground voxels, [{case, object, class, foreground_voxels}];
    - ``cases``: per case its number of ``objects``, their ``classes`` and ``foreground_voxels``, and, for cases
      with a full label, its quality (``point_tools.quality``: fg_precision, fg_recall, ...);
    - ``summary``: per quality metric, mean / min / number of cases that define it (only with full labels).
    """
    def clean(value):  # JSON has no NaN: an undefined ratio is null
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        return None if isinstance(value, float) and math.isnan(value) else value

    report = {"min_foreground_voxels": MIN_FOREGROUND_VOXELS,
              "little_foreground": [{"case": case, "object": n, "class": cls, "foreground_voxels": voxels}
                                    for case, n, cls, voxels in little_foreground(rows)],
              "cases": {r["case"]: clean({k: v for k, v in r.items() if k != "case"}) for r in rows}}
    measured = [r for r in rows if "fg_precision" in r]
    if measured:
        report["summary"] = clean(mean_quality(measured))
    return report


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

    Raises DatasetInputError (settings, dataset id, inputs: every problem listed) or ConversionError (a write
    failed, a worker died) with nothing written, or LittleForegroundError after writing the dataset unless
    ``allow_empty_foreground``.
    """
    started = time.perf_counter()
    settings = settings or LabelSettings(num_classes=len(classes))
    check_settings(settings, num_processes)
    folder_name = dataset_folder_name(dataset_id, name)
    raw = nnunet_raw()
    if settings.num_classes != len(classes):
        raise DatasetInputError(f"{len(classes)} class name(s) {list(classes)} for num_classes={settings.num_classes}")
    remove_stale_temporaries(raw, dataset_id)
    check_dataset_id(raw, dataset_id, folder_name, overwrite)
    layout_problems, ending, num_channels = _check_layout(train, test, classes, channel_names)
    problems = [*problems, *layout_problems]
    names = channel_names or (["image"] if num_channels == 1 else [f"channel{c}" for c in range(num_channels)])
    labels = {"background": 0, **{c: i for i, c in enumerate(classes, start=1)}, "ignore": len(classes) + 1}
    final = raw / folder_name
    tmp = None
    try:
        # The pool closes (its workers finish) before any clean-up below, so nothing writes into a removed folder.
        with _workers(num_processes, len(train) + len(test), settings.device) as pool:
            if problems:
                raise DatasetInputError(problem_list(problems + _check_cases(train, test, settings, pool)))
            tmp = _hidden_sibling(final, "partial")
            begun = time.perf_counter()
            rows = _convert_into(tmp, train, test, ending, settings, pool, preview)
        labelled = time.perf_counter()
        if preview:
            from dataset_conversion.previews import write_overview

            overview = write_overview(tmp, [case.name for case in train])
        with _writing(tmp / "dataset.json"):
            generate_dataset_json(str(tmp), dict(enumerate(names)), labels, len(train), ending,
                                  dataset_name=folder_name, description=description, license="as the source images",
                                  converted_by="nnunetv2-paseg", numTest=len(test),
                                  pseudo_labels={"method": f"{settings.method} (point_tools.pseudo_labels)",
                                                 "lambda": settings.lamb, "threshold": settings.threshold})
        with _writing(tmp / QUALITY_REPORT):
            (tmp / QUALITY_REPORT).write_text(json.dumps(quality_summary(rows), indent=2) + "\n")
        # ``overwrite``: whatever holds the id now (check_dataset_id's list may be stale after a long conversion).
        _publish(tmp, final, existing_datasets(raw, dataset_id) if overwrite else ())
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
