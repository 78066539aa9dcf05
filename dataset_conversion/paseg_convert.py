"""``paseg_convert``: an nnU-Net v2 raw dataset of geodesic pseudo-labels from images and 7-click annotations.

    paseg_convert -i IMAGES_DIR -a ANNOTATIONS -d 501 -n Tumour [--gt MASKS_DIR]
                  [--images_ts TEST_IMAGES_DIR [--labels_ts TEST_MASKS_DIR]] [-np 4] [--preview]

IMAGES_DIR holds ``CASE_0000.ext``, ``CASE_0001.ext``, ... (one file per channel, named as in nnU-Net's
imagesTr; .nii.gz, .nrrd, .mha, ...). ANNOTATIONS is a folder with one click file per case, ``CASE.ext``
(annotation volume, any format SimpleITK reads, optional ``CASE.classes.json`` sidecar) or ``CASE.mrk.json``
(3D Slicer), or one CSV file with a ``case`` column (``point_tools.io`` describes the formats). Full masks
(``--gt`` for the pseudo-label quality report, ``--labels_ts`` for the test cases) are ``CASE.ext`` with
values 0..K. Writes ``$nnUNet_raw/DatasetXXX_NAME`` (see ``dataset_conversion.raw_dataset``).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Sequence

from point_tools.clicks import ClickError
from point_tools.geodesic import DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from point_tools.io import CLASSES_SIDECAR_SUFFIX, SLICER_SUFFIX, VOLUME_SUFFIXES, csv_cases

from dataset_conversion.raw_dataset import (IMAGE_ENDINGS, Case, DatasetInputError, LabelSettings, problem_list,
                                            build_dataset, image_ending)

_CHANNEL_FILE = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")
MASK_SUFFIXES = tuple(dict.fromkeys(IMAGE_ENDINGS + VOLUME_SUFFIXES))
ANNOTATION_SUFFIXES = (SLICER_SUFFIX,) + VOLUME_SUFFIXES
# Files that sit beside annotation volumes without being one: class sidecars, MetaImage data files.
_COMPANION_SUFFIXES = (CLASSES_SIDECAR_SUFFIX, ".raw", ".zraw")


def _visible_files(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise DatasetInputError(f"{what} folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _suffix(path: Path, suffixes: Sequence[str]) -> str | None:
    name = path.name.lower()
    return max((s for s in suffixes if name.endswith(s)), key=len, default=None)


def find_channel_images(folder: str | Path) -> tuple[dict[str, tuple[Path, ...]], list[str]]:
    """{case: channel files} of an nnU-Net style image folder, and the problems found (naming case and file)."""
    folder = Path(folder)
    found: dict[str, dict[int, Path]] = {}
    problems = []
    for path in _visible_files(folder, "image"):
        ending = image_ending(path)
        match = _CHANNEL_FILE.fullmatch(path.name[: -len(ending)]) if ending else None
        if match is None:
            problems.append(f"{path}: not an image named CASE_XXXX.ext (XXXX the channel; ext one of "
                            f"{', '.join(IMAGE_ENDINGS)})")
            continue
        case, channel = match["case"], int(match["channel"])
        if channel in found.setdefault(case, {}):
            problems.append(f"case {case}: channel {channel} given twice: {found[case][channel].name}, {path.name}")
        found[case][channel] = path
    num_channels = max((max(ch) + 1 for ch in found.values()), default=0)
    for case, channels in sorted(found.items()):
        missing = [c for c in range(num_channels) if c not in channels]
        if missing:
            ending = image_ending(next(iter(channels.values())))
            problems.append(f"case {case}: channel file(s) {', '.join(f'{case}_{c:04d}{ending}' for c in missing)} "
                            f"missing in {folder} (other cases have {num_channels} channel(s))")
    if not found and not problems:
        problems.append(f"{folder}: no images (expected CASE_0000.ext files)")
    return {case: tuple(ch[c] for c in sorted(ch)) for case, ch in sorted(found.items())}, problems


def find_case_files(folder: str | Path, suffixes: Sequence[str], what: str) -> tuple[dict[str, Path], list[str]]:
    """{case: file} for files ``CASE<suffix>`` of ``folder``, and the problems found."""
    folder = Path(folder)
    found: dict[str, Path] = {}
    problems = []
    for path in _visible_files(folder, what):
        suffix = _suffix(path, suffixes)
        if suffix is None:
            if _suffix(path, _COMPANION_SUFFIXES) is None:
                problems.append(f"{path}: not a {what} file (CASE with one of {', '.join(suffixes)})")
            continue
        case = path.name[: -len(suffix)]
        if case in found:
            problems.append(f"case {case}: several {what} files: {found[case].name}, {path.name}")
        found[case] = path
    return found, problems


def match_cases(cases: Sequence[str], files: dict[str, Path], what: str, where: Path) -> list[str]:
    """Problems of pairing ``cases`` with ``files`` one to one."""
    problems = [f"case {c}: no {what} in {where}" for c in cases if c not in files]
    problems += [f"{path}: {what} for case {c}, which has no images" for c, path in files.items() if c not in cases]
    return problems


def find_annotations(annotations: str | Path, cases: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """{case: click file} from a folder of per-case files or one CSV, and the problems found."""
    annotations = Path(annotations)
    if annotations.is_file() and annotations.name.lower().endswith(".csv"):
        try:
            files = {c: annotations for c in csv_cases(annotations)}
        except ClickError as e:
            return {}, [str(e)]
        return files, match_cases(cases, files, "clicks", annotations)
    if annotations.is_file():
        return {}, [f"{annotations}: -a takes a folder of per-case click files or one .csv file"]
    files, problems = find_case_files(annotations, ANNOTATION_SUFFIXES, "click annotation")
    return files, problems + match_cases(cases, files, "click annotation", annotations)


def find_cases(images_dir: str | Path, annotations: str | Path, gt_dir: str | Path | None = None,
               images_ts_dir: str | Path | None = None,
               labels_ts_dir: str | Path | None = None) -> tuple[list[Case], list[Case]]:
    """(training, test) cases from the folders of ``paseg_convert``; DatasetInputError lists every problem."""
    images, problems = find_channel_images(images_dir)
    clicks, more = find_annotations(annotations, list(images))
    problems += more
    truth: dict[str, Path] = {}
    if gt_dir is not None:
        truth, more = find_case_files(gt_dir, MASK_SUFFIXES, "full mask")
        problems += more + match_cases(list(images), truth, "full mask", Path(gt_dir))
    test_images: dict[str, tuple[Path, ...]] = {}
    test_truth: dict[str, Path] = {}
    if images_ts_dir is not None:
        test_images, more = find_channel_images(images_ts_dir)
        problems += more
        if labels_ts_dir is not None:
            test_truth, more = find_case_files(labels_ts_dir, MASK_SUFFIXES, "test label")
            problems += more + match_cases(list(test_images), test_truth, "test label", Path(labels_ts_dir))
    elif labels_ts_dir is not None:
        problems.append("--labels_ts needs --images_ts")
    if problems:
        raise DatasetInputError(problem_list(problems))
    train = [Case(c, files, clicks[c], truth.get(c)) for c, files in images.items()]
    test = [Case(c, files, None, test_truth.get(c)) for c, files in test_images.items()]
    return train, test


def convert_dataset(images_dir: str | Path, annotations: str | Path, dataset_id: int, name: str, *,
                    gt_dir: str | Path | None = None, images_ts_dir: str | Path | None = None,
                    labels_ts_dir: str | Path | None = None, classes: Sequence[str] = ("foreground",),
                    object_classes: dict[int, int] | None = None, channel_names: Sequence[str] | None = None,
                    lamb: float = DEFAULT_LAMBDA, threshold: float = DEFAULT_THRESHOLD, num_processes: int = 1,
                    device: str | None = None, overwrite: bool = False, preview: bool = False) -> Path:
    """Build ``$nnUNet_raw/DatasetXXX_NAME`` from ``paseg_convert``'s folders (module docstring); returns it."""
    train, test = find_cases(images_dir, annotations, gt_dir, images_ts_dir, labels_ts_dir)
    settings = LabelSettings(num_classes=len(classes), object_classes=object_classes, lamb=lamb,
                             threshold=threshold, device=device)
    return build_dataset(train, test, dataset_id, name, classes=classes, channel_names=channel_names,
                         settings=settings, num_processes=num_processes, overwrite=overwrite, preview=preview,
                         description=f"Geodesic pseudo-labels from click annotations ({Path(annotations).name})")


def parse_object_classes(items: Sequence[str] | None) -> dict[int, int] | None:
    """``["1:1", "2:2"]`` -> {1: 1, 2: 2} (object index : class)."""
    if not items:
        return None
    mapping = {}
    for item in items:
        try:
            obj, cls = (int(v) for v in item.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"--object_classes: {item!r} is not OBJECT:CLASS (e.g. 2:1)") from None
        mapping[obj] = cls
    return mapping


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every converter: geodesic settings, workers, device, overwrite."""
    parser.add_argument("-d", dest="dataset_id", type=int, required=True, help="dataset id (1..999)")
    parser.add_argument("--lambda", dest="lamb", type=float, default=DEFAULT_LAMBDA,
                        help=f"geodesic weight of the intensity term, 0..1 (default {DEFAULT_LAMBDA})")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"geodesic foreground threshold, 0..1 (default {DEFAULT_THRESHOLD})")
    parser.add_argument("-np", dest="num_processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset with this id (whatever its name)")


def run(fn, *args, **kwargs) -> None:
    """Call a converter; its input errors end the program with the message and status 1, not a traceback."""
    try:
        fn(*args, **kwargs)
    except (DatasetInputError, ClickError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="images_dir", required=True, help="images CASE_0000.ext, CASE_0001.ext, ...")
    parser.add_argument("-a", dest="annotations", required=True,
                        help="folder of click files CASE.ext / CASE.mrk.json, or one .csv with a case column")
    parser.add_argument("-n", dest="name", required=True, help="dataset name (DatasetXXX_NAME)")
    parser.add_argument("--gt", dest="gt_dir", help="full masks CASE.ext of the training cases: quality report")
    parser.add_argument("--images_ts", dest="images_ts_dir", help="test images CASE_0000.ext ... -> imagesTs")
    parser.add_argument("--labels_ts", dest="labels_ts_dir", help="full labels CASE.ext of the test images -> labelsTs")
    parser.add_argument("--classes", nargs="+", default=["foreground"],
                        help="names of classes 1..K (default: one class, 'foreground')")
    parser.add_argument("--object_classes", nargs="+", metavar="OBJECT:CLASS",
                        help="class of each object index of the click files that do not state it, e.g. 1:1 2:2")
    parser.add_argument("--channel_names", nargs="+",
                        help="one name per channel (nnU-Net normalises 'CT' as CT, others by z-score); "
                             "default 'image' / 'channel0', 'channel1', ...")
    parser.add_argument("--preview", action="store_true",
                        help="also write previews/CASE.png (three slices through each object's foreground click: "
                             "image, pseudo-label, clicks) and previews/overview.png (all cases) in the dataset")
    add_label_arguments(parser)
    args = parser.parse_args(argv)
    try:
        object_classes = parse_object_classes(args.object_classes)
    except argparse.ArgumentTypeError as e:
        parser.error(str(e))
    run(convert_dataset, args.images_dir, args.annotations, args.dataset_id, args.name, gt_dir=args.gt_dir,
        images_ts_dir=args.images_ts_dir, labels_ts_dir=args.labels_ts_dir, classes=args.classes,
        object_classes=object_classes, channel_names=args.channel_names, lamb=args.lamb, threshold=args.threshold,
        num_processes=args.num_processes, device=args.device, overwrite=args.overwrite, preview=args.preview)


if __name__ == "__main__":
    main()
