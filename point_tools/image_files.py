"""Image files: the one table of image suffixes, case ids from file names, and reading with a one-line error.

Every tool takes its image suffixes from ``IMAGE_SUFFIXES``: ``paseg_convert`` (images, full masks, annotation
volumes), ``paseg_simulate_points`` (masks) and the annotation-volume click format. SimpleITK reads all of them;
an nnU-Net dataset's images must use one that nnU-Net reads too (``dataset_conversion.cases.NNUNET_ENDINGS``,
a subset of this table). Suffixes match case-insensitively, the longest one first (``CASE.nii.gz`` is ``.nii.gz``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

import SimpleITK as sitk

from point_tools.clicks import ClickError

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".gipl")
# The data files that a detached header (.mhd, .nhdr) points to: they sit beside images without being one.
DETACHED_DATA_SUFFIXES = (".raw", ".zraw")

_ITK_PREFIX = re.compile(r"^(?:sitk|itk)::ERROR:\s*(?:\w+\(0x[0-9a-fA-F]+\):\s*)?")


def suffix_in(path: str | os.PathLike, suffixes: Sequence[str]) -> str | None:
    """The longest of ``suffixes`` that ``path``'s file name ends with (ignoring case), or None."""
    name = Path(path).name.lower()
    return max((s for s in suffixes if name.endswith(s.lower())), key=len, default=None)


def image_suffix(path: str | os.PathLike) -> str | None:
    """The image suffix of ``path`` (``.nii.gz``, ``.nrrd``, ...), or None if it is not an image file."""
    return suffix_in(path, IMAGE_SUFFIXES)


def image_stem(path: str | os.PathLike) -> str:
    """The file name without its image suffix, as spelled (``Case_001`` for ``Case_001.NII.GZ``); the case id of a
    mask, a label or an annotation volume. ValueError for a file name without an image suffix."""
    suffix = image_suffix(path)
    if suffix is None:
        raise ValueError(f"{path}: not an image file (expected one of {', '.join(IMAGE_SUFFIXES)})")
    return Path(path).name[: -len(suffix)]


def itk_reason(error: RuntimeError) -> str:
    """What a SimpleITK exception says went wrong, without the ITK source file and line and the object addresses
    around it (the first and the last of its reasons)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [_ITK_PREFIX.sub("", line) for line in lines if not line.startswith("Exception thrown in SimpleITK")]
    if any(r.startswith("Unable to determine ImageIO reader") for r in reasons):
        return "no image reader recognises it (not an image file, or a damaged one)"
    reasons = list(dict.fromkeys(r for r in reasons if r))
    return " ... ".join(reasons[:1] + reasons[1:][-1:]) or (lines[0] if lines else type(error).__name__)


def read_image(path: str | os.PathLike) -> sitk.Image:
    """sitk.ReadImage with a ClickError "could not read PATH: reason" instead of an ITK traceback."""
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise ClickError(f"could not read {path}: {itk_reason(e)}") from None
