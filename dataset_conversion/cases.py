"""What a conversion is given: the cases (their files), and the checks of the case list as a whole (names, file
endings, channels, class names), before any case is read."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from nnunetv2.imageio.nibabel_reader_writer import NibabelIO
from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

from point_tools.image_files import IMAGE_SUFFIXES, suffix_in

# The image suffixes whose 3D images nnU-Net reads too (SimpleITKIO's, and NIfTI through NibabelIO): a dataset's
# images must have one of them.
NNUNET_ENDINGS = tuple(s for s in IMAGE_SUFFIXES
                       if s in {*SimpleITKIO.supported_file_endings, *NibabelIO.supported_file_endings})


@dataclass(frozen=True)
class Case:
    """The files of one case.

    images: one file per channel, in channel order, all with the same ending.
    clicks: the click annotation (any format of ``point_tools.click_formats``); None for a test case.
    truth: full label map with values 0..K (or raw values mapped by
        ``dataset_conversion.label_settings.LabelSettings.truth_values``):
        for a training case it feeds the quality report, for a test case it goes to ``labelsTs``.
    """

    name: str
    images: tuple[Path, ...]
    clicks: Path | None = None
    truth: Path | None = None


def image_ending(path: str | os.PathLike) -> str | None:
    """The nnU-Net file ending of ``path`` (``.nii.gz``, ``.nrrd``, ...), or None if nnU-Net cannot read it."""
    return suffix_in(path, NNUNET_ENDINGS)


def check_layout(train: Sequence[Case], test: Sequence[Case], classes: Sequence[str],
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
