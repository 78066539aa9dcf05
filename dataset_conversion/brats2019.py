"""``paseg_convert_brats``: BraTS 2019 with PA-Seg's 7-point annotations, whole tumour as the foreground.

    paseg_convert_brats -i MICCAI_BraTS_2019_Data_Training -d 503 [--points ANNOTATION_DIR]
                        [--split split_BraTS.csv | --test_fraction 0.2 --seed 0] [--modalities all]

Case folders ``BraTS19_XXX/`` (anywhere under the input, e.g. in HGG/ and LGG/) hold
``BraTS19_XXX_{flair,t1,t1ce,t2,seg}.nii.gz``; the clicks ``BraTS19_XXX_7points.nii.gz`` (1/2 for the first
object, 3/4 for a second one) are in the case folder or anywhere under ``--points``. FLAIR alone is the
image (``--modalities flair``, as in the paper) or all four (``all``: FLAIR, T1, T1ce, T2 as channels 0-3).
The whole tumour (seg labels 1, 2, 4) is the foreground class. Test cases (from the split file's
``inference`` rows or a random ``--test_fraction``) go to imagesTs with their whole-tumour labels in
labelsTs; training cases' labels feed the pseudo-label quality report.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence, Unpack

from dataset_conversion.layouts import find_by_suffix, pick_file, read_split_file, split_by_fraction
from dataset_conversion.cli import add_label_arguments, conversion_options, run
from dataset_conversion.cases import Case
from dataset_conversion.errors import DatasetInputError, problem_list
from dataset_conversion.label_settings import ConversionOptions
from dataset_conversion.raw_dataset import build_one_class_dataset

MODALITIES = {"flair": ("flair",), "all": ("flair", "t1", "t1ce", "t2")}
CLICKS_SUFFIX = "_7points.nii.gz"
# BraTS labels: 1 necrotic / non-enhancing core, 2 oedema, 4 enhancing tumour; together the whole tumour.
WHOLE_TUMOUR = {0: 0, 1: 1, 2: 1, 4: 1}


def find_brats_cases(root: str | Path, modalities: str = "flair", points_dir: str | Path | None = None,
                     split_file: str | Path | None = None, test_fraction: float = 0.0,
                     seed: int = 0) -> tuple[list[Case], list[Case]]:
    """(training, test) cases of the BraTS layout; DatasetInputError lists every problem."""
    if modalities not in MODALITIES:
        raise DatasetInputError(f"modalities must be one of {list(MODALITIES)}, got {modalities!r}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetInputError(f"BraTS folder {root} does not exist")
    problems: list[str] = []
    folders = {p.parent.name: p.parent for p in root.rglob("*_flair.nii.gz")
               if p.name == f"{p.parent.name}_flair.nii.gz"}
    clicks = find_by_suffix(points_dir if points_dir is not None else root, CLICKS_SUFFIX)
    if split_file is not None:
        splits, problems = read_split_file(split_file)
        problems += [f"case {c}: listed in {split_file} but no folder {c}/ with {c}_flair.nii.gz under {root}"
                     for c in splits if c not in folders]
    else:
        splits = split_by_fraction(list(folders), test_fraction, seed)
    if not splits and not problems:
        problems.append(f"{root}: no BraTS case folders (CASE/CASE_flair.nii.gz)")
    train, test = [], []
    for case, split in splits.items():
        if case not in folders:
            continue
        folder = folders[case]
        needed = [folder / f"{case}_{m}.nii.gz" for m in MODALITIES[modalities]] + [folder / f"{case}_seg.nii.gz"]
        missing = [str(p) for p in needed if not p.is_file()]
        case_clicks = pick_file(clicks, case, "click", problems)
        if split == "train" and case_clicks is None and case not in clicks:
            missing.append(f"{case}{CLICKS_SUFFIX} (under {points_dir or root})")
        if missing:
            problems.append(f"case {case}: {', '.join(missing)} not found")
        elif split == "train":
            train.append(Case(case, tuple(needed[:-1]), case_clicks, needed[-1]))
        else:
            test.append(Case(case, tuple(needed[:-1]), None, needed[-1]))
    if problems:
        raise DatasetInputError(problem_list(problems))
    return train, test


def convert_brats(root: str | Path, dataset_id: int, name: str = "BraTS2019", *, modalities: str = "flair",
                  points_dir: str | Path | None = None, split_file: str | Path | None = None,
                  test_fraction: float = 0.0, seed: int = 0, **options: Unpack[ConversionOptions]) -> Path:
    """Build ``$nnUNet_raw/DatasetXXX_NAME`` from the BraTS 2019 layout (module docstring); returns it. options:
    method, lamb, threshold, device, num_processes, overwrite, allow_empty_foreground (``ConversionOptions``)."""
    return build_one_class_dataset(
        lambda: find_brats_cases(root, modalities, points_dir, split_file, test_fraction, seed), dataset_id, name,
        class_name="whole_tumour", channel_names=tuple(m.upper() for m in MODALITIES[modalities]),
        description=f"BraTS 2019 whole tumour ({modalities})", truth_values=WHOLE_TUMOUR, **options)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-i", dest="root", required=True, help="BraTS 2019 training data folder (case folders)")
    parser.add_argument("-n", dest="name", default="BraTS2019", help="dataset name (default BraTS2019)")
    parser.add_argument("--points", dest="points_dir", help="folder with CASE_7points.nii.gz (default: -i)")
    parser.add_argument("--modalities", choices=sorted(MODALITIES), default="flair",
                        help="flair (default, as the paper) or all four")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--split", dest="split_file", help="split CSV: case,training|validation|inference")
    group.add_argument("--test_fraction", type=float, default=0.0, help="share of cases drawn as test cases")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --test_fraction draw (default 0)")
    add_label_arguments(parser)
    args = parser.parse_args(argv)
    run(convert_brats, args.root, args.dataset_id, args.name, modalities=args.modalities, points_dir=args.points_dir,
        split_file=args.split_file, test_fraction=args.test_fraction, seed=args.seed, **conversion_options(args))


if __name__ == "__main__":
    main()
