"""``paseg_convert``: an nnU-Net v2 raw dataset of pseudo-labels from images and 7-click annotations.

    paseg_convert -i IMAGES_DIR -a ANNOTATIONS -d 501 -n Tumour [--gt MASKS_DIR]
                  [--images_ts TEST_IMAGES_DIR [--labels_ts TEST_MASKS_DIR]] [-np 4] [--preview]
                  [--method geodesic|refined|extremes]

IMAGES_DIR holds ``CASE_0000.ext``, ``CASE_0001.ext``, ... (one file per channel, named as in nnU-Net's
imagesTr; .nii.gz, .nrrd, .mha, ...). ANNOTATIONS is a folder with one click file per case, ``CASE<suffix>``, or
one file with the clicks of all cases, in any of the click formats (README's "Click formats" describes them;
``point_tools.click_formats`` is their registry). Full masks (``--gt`` for the pseudo-label quality report,
``--labels_ts`` for the test cases) are ``CASE.ext`` with values 0..K. Writes ``$nnUNet_raw/DatasetXXX_NAME`` (see
``dataset_conversion.raw_dataset``) with a report, ``pseudo_label_quality.json``: each object's pseudo-foreground
size and, with --gt, the quality against the masks.

Exit status: 0 written; 1 nothing written (every problem with the folders and cases is listed, each naming its
file); 2 a bad option; 3 written, but some objects have fewer than 5 pseudo-foreground voxels (listed; check
their clicks, or pass --allow_empty_foreground to accept them); 130 / 143 stopped by Ctrl-C / SIGTERM, nothing
written (a temporary folder that a killed run left behind is removed by the next run of the same id).
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Sequence

from point_tools.click_formats import CLICK_FORMATS, format_of
from point_tools.clicks import ClickError
from point_tools.geodesic import DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from point_tools.pseudo_labels import DEFAULT_METHOD
from point_tools.image_files import IMAGE_SUFFIXES, suffix_in

from dataset_conversion.cli import add_label_arguments, conversion_options, run
from dataset_conversion.cases import NNUNET_ENDINGS, Case, image_ending
from dataset_conversion.label_settings import LabelSettings
from dataset_conversion.raw_dataset import build_dataset

_CHANNEL_FILE = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")
PER_CASE_SUFFIXES = tuple(s for f in CLICK_FORMATS.values() if f.per_case for s in f.suffixes)
DATASET_FILE_SUFFIXES = tuple(s for f in CLICK_FORMATS.values() if not f.per_case for s in f.suffixes)
# Files that sit beside click files or masks without being one (e.g. class sidecars, MetaImage data): skipped.
_COMPANION_SUFFIXES = tuple(dict.fromkeys(s for f in CLICK_FORMATS.values() for s in f.companions))


def _visible_files(folder: Path, what: str, problems: list[str]) -> list[Path]:
    """The files of ``folder`` not hidden; a problem (and no files) if it is not a folder."""
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    problems.append(f"{what} folder {folder} {'is a file, not a folder' if folder.exists() else 'does not exist'}")
    return []


def find_channel_images(folder: str | Path) -> tuple[dict[str, tuple[Path, ...]], list[str]]:
    """{case: channel files} of an nnU-Net style image folder, and the problems found (naming case and file)."""
    folder = Path(folder)
    found: dict[str, dict[int, Path]] = {}
    problems: list[str] = []
    for path in _visible_files(folder, "image", problems):
        ending = image_ending(path)
        match = _CHANNEL_FILE.fullmatch(path.name[: -len(ending)]) if ending else None
        if match is None:
            problems.append(f"{path}: not an image named CASE_XXXX.ext (XXXX the channel; ext one of "
                            f"{', '.join(NNUNET_ENDINGS)})")
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
    problems: list[str] = []
    for path in _visible_files(folder, what, problems):
        suffix = suffix_in(path, suffixes)
        if suffix is None:
            if suffix_in(path, _COMPANION_SUFFIXES) is None:
                problems.append(f"{path}: not a {what} file (CASE with one of {', '.join(suffixes)})")
            continue
        case = path.name[: -len(suffix)]
        if case in found:
            problems.append(f"case {case}: several {what} files: {found[case].name}, {path.name}")
        found[case] = path
    return found, problems


def match_cases(cases: Sequence[str], files: dict[str, Path], what: str, where: Path) -> list[str]:
    """Problems of pairing ``cases`` with ``files`` one to one (none without cases: the image folder's own problem
    says enough)."""
    if not cases:
        return []
    problems = [f"case {c}: no {what} in {where}" for c in cases if c not in files]
    problems += [f"{path}: {what} for case {c}, which has no images" for c, path in files.items() if c not in cases]
    return problems


def find_annotations(annotations: str | Path, cases: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """{case: click file} from a folder of per-case click files or one file of all cases, and the problems found."""
    annotations = Path(annotations)
    if annotations.is_file():
        try:
            fmt = format_of(annotations)
        except ClickError:
            fmt = None  # reported below, with what -a takes
        if fmt is None or fmt.per_case:
            return {}, [f"{annotations}: -a takes a folder of per-case click files or one "
                        f"{' / '.join(DATASET_FILE_SUFFIXES)} file of all cases"]
        try:
            files = {c: annotations for c in fmt.cases(annotations)}
        except ClickError as e:
            return {}, [str(e)]
        return files, match_cases(cases, files, "clicks", annotations)
    files, problems = find_case_files(annotations, PER_CASE_SUFFIXES, "click annotation")
    return files, problems + match_cases(cases, files, "click annotation", annotations)


def find_cases(images_dir: str | Path, annotations: str | Path, gt_dir: str | Path | None = None,
               images_ts_dir: str | Path | None = None,
               labels_ts_dir: str | Path | None = None) -> tuple[list[Case], list[Case], list[str]]:
    """(training, test) cases from the folders of ``paseg_convert``, and every problem found in the folders (the
    cases that have one are left out)."""
    images, problems = find_channel_images(images_dir)
    clicks, more = find_annotations(annotations, list(images))
    problems += more
    truth: dict[str, Path] = {}
    if gt_dir is not None:
        truth, more = find_case_files(gt_dir, IMAGE_SUFFIXES, "full mask")
        problems += more + match_cases(list(images), truth, "full mask", Path(gt_dir))
    test_images: dict[str, tuple[Path, ...]] = {}
    test_truth: dict[str, Path] = {}
    if images_ts_dir is not None:
        test_images, more = find_channel_images(images_ts_dir)
        problems += more
        if labels_ts_dir is not None:
            test_truth, more = find_case_files(labels_ts_dir, IMAGE_SUFFIXES, "test label")
            problems += more + match_cases(list(test_images), test_truth, "test label", Path(labels_ts_dir))
    elif labels_ts_dir is not None:
        problems.append("--labels_ts needs --images_ts")
    train = [Case(c, files, clicks[c], truth.get(c)) for c, files in images.items()
             if c in clicks and (gt_dir is None or c in truth)]
    test = [Case(c, files, None, test_truth.get(c)) for c, files in test_images.items()
            if labels_ts_dir is None or c in test_truth]
    return train, test, problems


def convert_dataset(images_dir: str | Path, annotations: str | Path, dataset_id: int, name: str, *,
                    gt_dir: str | Path | None = None, images_ts_dir: str | Path | None = None,
                    labels_ts_dir: str | Path | None = None, classes: Sequence[str] = ("foreground",),
                    object_classes: dict[int, int] | None = None, channel_names: Sequence[str] | None = None,
                    lamb: float = DEFAULT_LAMBDA, threshold: float = DEFAULT_THRESHOLD, num_processes: int = 1,
                    device: str | None = None, overwrite: bool = False, preview: bool = False,
                    allow_empty_foreground: bool = False, method: str = DEFAULT_METHOD) -> Path:
    """Build ``$nnUNet_raw/DatasetXXX_NAME`` from ``paseg_convert``'s folders (module docstring); returns it.

    The settings are checked first (``LabelSettings``); the problems of the folders and of every case are reported
    together (``build_dataset`` says what it raises).
    """
    settings = LabelSettings(num_classes=len(classes), object_classes=object_classes, lamb=lamb,
                             threshold=threshold, device=device, method=method)
    train, test, problems = find_cases(images_dir, annotations, gt_dir, images_ts_dir, labels_ts_dir)
    return build_dataset(train, test, dataset_id, name, classes=classes, channel_names=channel_names,
                         settings=settings, num_processes=num_processes, overwrite=overwrite, preview=preview,
                         description=f"Pseudo-labels ({method}) from click annotations ({Path(annotations).name})",
                         problems=problems, allow_empty_foreground=allow_empty_foreground)


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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="images_dir", required=True, help="images CASE_0000.ext, CASE_0001.ext, ...")
    parser.add_argument("-a", dest="annotations", required=True,
                        help=f"folder of click files CASE<suffix> ({', '.join(PER_CASE_SUFFIXES)}), or one "
                             f"{' / '.join(DATASET_FILE_SUFFIXES)} file with the clicks of all cases")
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
        object_classes=object_classes, channel_names=args.channel_names, preview=args.preview,
        **conversion_options(args))


if __name__ == "__main__":
    main()
