"""Click annotations as CSV: one row per click, world coordinates in mm.

Header (required, any column order): ``case,x,y,z,kind,object`` plus an optional ``class`` column.
- ``x,y,z``: world mm in ITK's LPS convention (what SimpleITK's physical points use);
- ``kind``: ``fg`` or ``bg`` (``foreground``/``background`` also accepted);
- ``object``: 1-based object index within the case;
- ``class``: the object's class (>= 1); empty cells leave it unstated, the rows of one object must agree.
Blank lines are skipped; any other malformed row is an error naming the file and line.
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import SimpleITK as sitk

from point_tools.clicks import ClickError, ObjectClicks, assemble_objects, validate_objects
from point_tools.geometry import array_shape, index_to_world, inside, world_to_index

REQUIRED_COLUMNS = ("case", "x", "y", "z", "kind", "object")
OPTIONAL_COLUMNS = ("class",)
_KINDS = {"fg": "fg", "foreground": "fg", "bg": "bg", "background": "bg"}


@dataclass(frozen=True)
class ClickRow:
    """One parsed CSV row."""

    line: int
    case: str
    xyz: tuple[float, float, float]
    kind: str
    object: int
    label: int | None


def _positive_int(text: str, what: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ClickError(f"{where}: {what} {text!r} is not an integer") from None
    if value < 1:
        raise ClickError(f"{where}: {what} must be >= 1, got {value}")
    return value


def _parse_row(row: dict[str, str], line: int, source: str) -> ClickRow:
    where = f"{source}: line {line}"
    if None in row or any(v is None for v in row.values()):
        found = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
        raise ClickError(f"{where}: {found} fields where the header has {len(row) - (None in row)}")
    case = row["case"].strip()
    if not case:
        raise ClickError(f"{where}: empty case")
    try:
        xyz = tuple(float(row[c]) for c in "xyz")
    except ValueError:
        raise ClickError(f"{where}: x, y, z must be numbers, got {[row[c] for c in 'xyz']}") from None
    if not all(math.isfinite(v) for v in xyz):
        raise ClickError(f"{where}: x, y, z must be finite, got {xyz}")
    kind = _KINDS.get(row["kind"].strip().lower())
    if kind is None:
        raise ClickError(f"{where}: kind {row['kind']!r}; expected fg or bg")
    obj = _positive_int(row["object"].strip(), "object", where)
    cls_text = (row.get("class") or "").strip()
    label = _positive_int(cls_text, "class", where) if cls_text else None
    return ClickRow(line, case, xyz, kind, obj, label)  # type: ignore[arg-type]


def read_csv_rows(path: str | Path) -> list[ClickRow]:
    """Every row of a click CSV, checked for form (not yet for any image)."""
    source = str(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, skipinitialspace=True)
            header = [(h or "").strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            unknown = [c for c in header if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
            if missing or unknown or len(set(header)) != len(header):
                raise ClickError(f"{source}: header {header} must name the columns {','.join(REQUIRED_COLUMNS)} "
                                 f"(optionally class) once each" + (f"; missing {missing}" if missing else "")
                                 + (f"; unknown {unknown}" if unknown else ""))
            reader.fieldnames = header
            rows = []
            for row in reader:
                if all(not (v or "").strip() for k, v in row.items() if k is not None):
                    continue
                rows.append(_parse_row(row, reader.line_num, source))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ClickError(f"{source}: cannot read the CSV file ({type(e).__name__}: {e})") from None
    return rows


def csv_cases(path: str | Path) -> list[str]:
    """Case ids of a click CSV, in order of first appearance."""
    return list(dict.fromkeys(r.case for r in read_csv_rows(path)))


def read_csv_clicks(path: str | Path, reference: sitk.Image, case: str | None = None,
                    object_classes: dict[int, int] | None = None) -> list[ObjectClicks]:
    """Objects of ``case`` in the click CSV ``path`` (``case`` may be omitted when the file has one case)."""
    rows = read_csv_rows(path)
    cases = list(dict.fromkeys(r.case for r in rows)) if case is None else [case]
    if case is None and len(cases) != 1:
        raise ClickError(f"{path}: {len(cases)} cases in the file {cases[:5]}; say which case to read")
    source = f"{path} (case {cases[0]})"
    rows = [r for r in rows if r.case == cases[0]]
    if not rows:
        raise ClickError(f"{source}: no clicks for this case")
    shape = array_shape(reference)
    fg: dict[int, list] = defaultdict(list)
    bg: dict[int, list] = defaultdict(list)
    classes: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        idx = world_to_index(reference, r.xyz)
        if not inside(idx, shape):
            raise ClickError(f"{path}: line {r.line}: {r.kind} click of object {r.object} at {r.xyz} mm maps to voxel "
                             f"{idx}, outside the image of shape {shape}")
        (fg if r.kind == "fg" else bg)[r.object].append(idx)
        if r.label is not None:
            classes[r.object].add(r.label)
    file_classes = {}
    for obj, stated in classes.items():
        if len(stated) > 1:
            raise ClickError(f"{source}: object {obj}: conflicting classes {sorted(stated)}")
        file_classes[obj] = next(iter(stated), None)
    return assemble_objects(fg, bg, file_classes, object_classes, shape, source, "rows")


def write_csv(rows: Mapping[str, tuple[Sequence[ObjectClicks], sitk.Image]], path: str | Path) -> None:
    """Write the clicks of several cases, ``{case: (objects, reference image)}``, as one CSV in LPS world mm."""
    lines = [",".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)]
    for case, (objects, reference) in rows.items():
        if not case or any(ch in case for ch in ',"\n\r'):
            raise ClickError(f"{path}: case id {case!r} cannot be written to CSV unquoted")
        validate_objects(objects, array_shape(reference), f"{path} (case {case})")
        for n, obj in enumerate(objects, start=1):
            for kind, point in [("fg", obj.foreground)] + [("bg", p) for p in obj.background]:
                xyz = ",".join(f"{v:.6f}" for v in index_to_world(reference, point))
                lines.append(f"{case},{xyz},{kind},{n},{obj.label}")
    try:
        Path(path).write_text("\n".join(lines) + "\n")
    except OSError as e:
        raise ClickError(f"{path}: cannot write the CSV file ({e})") from None
