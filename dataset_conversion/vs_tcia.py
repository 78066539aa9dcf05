"""``paseg_convert_vs``: the vestibular schwannoma dataset (TCIA Vestibular-Schwannoma-SEG, T2) in PA-Seg's layout.

    paseg_convert_vs -i VS_ROOT --split split_VS.csv -d 502 [-n VS] [-np 4]

Under VS_ROOT (searched recursively, so PA-Seg's ``image_crop/``, ``label_crop/`` and
``annotation_7points/`` folders work as well as one flat folder), per case ``CASE_T2.nii.gz`` (image),
``CASE_7points.nii.gz`` (clicks: 1 background, 2 foreground) and ``CASE_Label.nii.gz`` (full label, 0/1).
The split CSV's ``training`` and ``validation`` cases become imagesTr/labelsTr with pseudo-labels
(``paseg_convert``'s methods, ``extremes`` by default; their full labels feed the quality report), its ``inference`` cases imagesTs with their full labels in
labelsTs. Cases under VS_ROOT that the split does not list are left out.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence, Unpack

from dataset_conversion.layouts import find_by_suffix, pick_file, read_split_file
from dataset_conversion.cli import add_label_arguments, conversion_options, run
from dataset_conversion.cases import Case
from dataset_conversion.errors import DatasetInputError, problem_list
from dataset_conversion.label_settings import ConversionOptions
from dataset_conversion.raw_dataset import build_one_class_dataset

IMAGE_SUFFIX = "_T2.nii.gz"
CLICKS_SUFFIX = "_7points.nii.gz"
LABEL_SUFFIX = "_Label.nii.gz"


def find_vs_cases(root: str | Path, split_file: str | Path) -> tuple[list[Case], list[Case]]:
    """(training, test) cases of the VS layout; DatasetInputError lists every missing or duplicate file."""
    if not Path(root).is_dir():
        raise DatasetInputError(f"VS folder {root} does not exist")
    splits, problems = read_split_file(split_file)
    files = {suffix: find_by_suffix(root, suffix) for suffix in (IMAGE_SUFFIX, CLICKS_SUFFIX, LABEL_SUFFIX)}
    train, test = [], []
    for case, split in splits.items():
        image, clicks, truth = (pick_file(files[s], case, s, problems) for s in files)
        needed = {IMAGE_SUFFIX: image, CLICKS_SUFFIX: clicks} if split == "train" else {IMAGE_SUFFIX: image}
        missing = [f"{case}{s}" for s, path in needed.items() if path is None and case not in files[s]]
        if missing:
            problems.append(f"case {case} ({split}): {', '.join(missing)} not found under {root}")
        elif split == "train":
            train.append(Case(case, (image,), clicks, truth))
        else:
            test.append(Case(case, (image,), None, truth))
    unlabelled = [c.name for c in test if c.truth is None]
    if unlabelled and len(unlabelled) < len(test):
        problems.append(f"inference case(s) {', '.join(unlabelled)}: no {LABEL_SUFFIX} under {root} (the other "
                        "inference cases have one; labelsTs must be complete to evaluate)")
    if problems:
        raise DatasetInputError(problem_list(problems))
    left_out = sorted(set(files[IMAGE_SUFFIX]) - set(splits))
    if left_out:
        print(f"{len(left_out)} case(s) under {root} not in {split_file}, left out: {', '.join(left_out[:10])}"
              + (" ..." if len(left_out) > 10 else ""))
    return train, test


def convert_vs(root: str | Path, split_file: str | Path, dataset_id: int, name: str = "VS",
               **options: Unpack[ConversionOptions]) -> Path:
    """Build ``$nnUNet_raw/DatasetXXX_NAME`` from the VS layout (module docstring); returns it. options: method,
    lamb, threshold, device, num_processes, overwrite, allow_empty_foreground (``ConversionOptions``)."""
    return build_one_class_dataset(lambda: find_vs_cases(root, split_file), dataset_id, name, class_name="schwannoma",
                                   channel_names=("T2",), description="Vestibular schwannoma (TCIA "
                                   "Vestibular-Schwannoma-SEG, T2)", **options)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="root", required=True, help="folder with the *_T2, *_7points, *_Label files")
    parser.add_argument("--split", required=True, help="split CSV: case,training|validation|inference")
    parser.add_argument("-n", dest="name", default="VS", help="dataset name (default VS)")
    add_label_arguments(parser)
    args = parser.parse_args(argv)
    run(convert_vs, args.root, args.split, args.dataset_id, args.name, **conversion_options(args))


if __name__ == "__main__":
    main()
