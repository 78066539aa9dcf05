"""Finding files and splits in the published PA-Seg dataset layouts (VS, BraTS 2019).

Split files are CSV rows ``case,split`` without a header (PA-Seg's ``splits/split_*.csv``); a first row
whose split is not a known one (``name,phase``) is taken for a header. Split values: ``training`` and
``validation`` become nnU-Net training cases (nnU-Net keeps its own cross-validation folds),
``inference`` (or ``test``) become test cases.
"""
from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Sequence

from dataset_conversion.errors import DatasetInputError

TRAIN_SPLITS = ("training", "validation")
TEST_SPLITS = ("inference", "test", "testing")


def read_split_file(path: str | Path) -> tuple[dict[str, str], list[str]]:
    """({case: "train" | "test"}, problems) from a split CSV; each problem names the file and line."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), start=1) if any(row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        return {}, [f"{path}: cannot read the split file ({type(e).__name__}: {e})"]
    if rows and len(rows[0][1]) >= 2 and rows[0][1][1].lower() not in TRAIN_SPLITS + TEST_SPLITS:
        rows = rows[1:]
    splits: dict[str, str] = {}
    problems = []
    for line, row in rows:
        split = row[1].lower() if len(row) >= 2 else ""
        if len(row) != 2 or not row[0] or split not in TRAIN_SPLITS + TEST_SPLITS:
            problems.append(f"{path}: line {line}: {','.join(row)!r} is not 'case,split' with split one of "
                            f"{', '.join(TRAIN_SPLITS + TEST_SPLITS)}")
        elif row[0] in splits:
            problems.append(f"{path}: line {line}: case {row[0]} listed twice")
        else:
            splits[row[0]] = "train" if split in TRAIN_SPLITS else "test"
    if not rows:
        problems.append(f"{path}: no cases")
    return splits, problems


def split_by_fraction(cases: Sequence[str], test_fraction: float, seed: int = 0) -> dict[str, str]:
    """{case: "train" | "test"} with round(test_fraction * n) test cases drawn with ``seed`` (reproducible)."""
    if not 0.0 <= test_fraction < 1.0:
        raise DatasetInputError(f"test fraction must be in [0, 1), got {test_fraction}")
    ordered = sorted(cases)
    test = set(random.Random(seed).sample(ordered, round(test_fraction * len(ordered))))
    return {c: "test" if c in test else "train" for c in ordered}


def find_by_suffix(root: str | Path, suffix: str) -> dict[str, list[Path]]:
    """{case: files} for the files ``CASE<suffix>`` anywhere under ``root`` (several files per case: a problem
    for the caller to report, if it needs that case)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(Path(root).rglob(f"*{suffix}")):
        if path.is_file() and not path.name.startswith("."):
            found.setdefault(path.name[: -len(suffix)], []).append(path)
    return found


def pick_file(files: dict[str, list[Path]], case: str, what: str, problems: list[str]) -> Path | None:
    """The one file of ``case`` in ``files``; None (and a problem, if there are several) otherwise."""
    paths = files.get(case, [])
    if len(paths) > 1:
        problems.append(f"case {case}: {len(paths)} {what} files: {', '.join(map(str, paths))}")
    return paths[0] if len(paths) == 1 else None
