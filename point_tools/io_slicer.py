"""3D Slicer markups files (``.mrk.json``) as click annotations.

Only point lists (markup ``"type": "Fiducial"``) are read; other markup types in the file are ignored.
Positions are world mm in the markup's ``"coordinateSystem"``: ``"LPS"`` (ITK's, Slicer's default when the
key is missing) or ``"RAS"`` (x and y negated). Points whose ``positionStatus`` is ``"undefined"`` or
``"preview"`` (not placed) are skipped.

Which click a point is comes from its ``label`` and ``description`` (both searched, case-insensitive):
- kind: the word ``fg``/``foreground`` or ``bg``/``background`` (digits may follow: ``bg3``);
- object: ``obj<N>`` or ``object<N>`` (``obj2``, ``Object-2``); without it, the object is the list's position
  among the point lists in the file (1-based), so "one point list per object" needs no object tags;
- class (multi-class datasets): ``class<K>`` or ``cls<K>`` on any point of the object; the points of one
  object must agree, and so must the ``object_classes`` argument where it names the object.
Examples: ``obj1_fg``, ``obj1_bg2``, ``obj2_fg_class3``, or a description "background".
A point list whose points carry no fg/bg word at all is read as the bare 7-click protocol when it has exactly
7 points: the first is the foreground click, the other six are background clicks. Any other list with
untagged points is an error, as is a list mixing tagged and untagged points.

The writer emits one point list per object with labels ``obj<N>_fg_class<K>`` and ``obj<N>_bg<i>``.
"""
from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

import SimpleITK as sitk

from point_tools.clicks import ClickError, ObjectClicks, assemble_objects, validate_objects
from point_tools.geometry import array_shape, index_to_world, inside, world_to_index

SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
          "markups-schema-v1.0.3.json#")
COORDINATE_SYSTEMS = ("LPS", "RAS")
_KIND = re.compile(r"(?<![a-z])(foreground|background|fg|bg)(?![a-z])")
_OBJECT = re.compile(r"(?<![a-z])obj(?:ect)?[ _-]?(\d+)")
_CLASS = re.compile(r"(?<![a-z])(?:class|cls)[ _-]?(\d+)")
_UNPLACED = ("undefined", "preview")


def _to_lps(xyz: Sequence[float], system: str) -> tuple[float, float, float]:
    """LPS world point from one in ``system`` (RAS and LPS differ by the sign of x and y)."""
    x, y, z = (float(v) for v in xyz)
    return (-x, -y, z) if system == "RAS" else (x, y, z)


def _one(matches: list[str], what: str, where: str) -> str | None:
    """The single distinct value among ``matches`` (None if empty); several distinct ones are an error."""
    distinct = sorted(set(matches))
    if len(distinct) > 1:
        raise ClickError(f"{where}: conflicting {what} tags {distinct}")
    return distinct[0] if distinct else None


def _tags(point: dict, where: str) -> tuple[str | None, int | None, int | None]:
    """(kind 'fg'|'bg'|None, object or None, class or None) from a control point's label and description."""
    text = f"{point.get('label') or ''} {point.get('description') or ''}".lower()
    kind = _one(["fg" if m.startswith("f") else "bg" for m in _KIND.findall(text)], "fg/bg", where)
    obj = _one([str(int(m)) for m in _OBJECT.findall(text)], "object", where)
    cls = _one([str(int(m)) for m in _CLASS.findall(text)], "class", where)
    return kind, None if obj is None else int(obj), None if cls is None else int(cls)


def _coordinate_system(markup: dict, where: str) -> str:
    system = str(markup.get("coordinateSystem") or "LPS").upper()
    if system not in COORDINATE_SYSTEMS:
        raise ClickError(f"{where}: coordinateSystem {system!r}; expected LPS or RAS")
    units = markup.get("coordinateUnits", "mm")
    unit = units.get("CodeValue", "mm") if isinstance(units, dict) else units
    if unit != "mm":
        raise ClickError(f"{where}: coordinateUnits {unit!r}; only mm is supported")
    return system


def _load(path: str | Path) -> list[dict]:
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ClickError(f"{path}: cannot read the markups file ({type(e).__name__}: {e})") from None
    markups = doc.get("markups") if isinstance(doc, dict) else None
    if not isinstance(markups, list) or not all(isinstance(m, dict) for m in markups):
        raise ClickError(f'{path}: not a 3D Slicer markups file (no "markups" list)')
    return [m for m in markups if m.get("type") == "Fiducial"]


def read_slicer_markups(path: str | Path, reference: sitk.Image,
                        object_classes: dict[int, int] | None = None) -> list[ObjectClicks]:
    """Objects of the 3D Slicer markups file ``path``, mapped to the voxels of ``reference``."""
    source = str(path)
    shape = array_shape(reference)
    fg: dict[int, list] = defaultdict(list)
    bg: dict[int, list] = defaultdict(list)
    classes: dict[int, list[int]] = defaultdict(list)
    for list_no, markup in enumerate(_load(path), start=1):
        where_list = f"{source}: point list {list_no}"
        system = _coordinate_system(markup, where_list)
        points = [p for p in markup.get("controlPoints") or [] if isinstance(p, dict)
                  and p.get("positionStatus", "defined") not in _UNPLACED]
        tags = [_tags(p, f"{where_list}, point {p.get('label')!r}") for p in points]
        untagged = [p.get("label") for p, t in zip(points, tags) if t[0] is None]
        if untagged and len(untagged) == len(points) == 7:
            tags = [("fg" if i == 0 else "bg", t[1], t[2]) for i, t in enumerate(tags)]
        elif untagged:
            raise ClickError(f"{where_list}: point(s) {untagged} say neither fg nor bg in label or description "
                             "(see point_tools.io_slicer for the labelling convention)")
        for point, (kind, obj, cls) in zip(points, tags):
            obj = list_no if obj is None else obj
            where = f"{where_list}, point {point.get('label')!r} (object {obj}, {kind})"
            position = point.get("position")
            try:
                if len(position) != 3 or not all(math.isfinite(float(v)) for v in position):
                    raise ValueError
            except (TypeError, ValueError):
                raise ClickError(f"{where}: position {position!r} is not three finite numbers") from None
            lps = _to_lps(position, system)
            idx = world_to_index(reference, lps)
            if not inside(idx, shape):
                raise ClickError(f"{where}: {system} position {tuple(position)} mm maps to voxel {idx}, outside the "
                                 f"image of shape {shape}")
            (fg if kind == "fg" else bg)[obj].append(idx)
            if cls is not None:
                classes[obj].append(cls)
    file_classes = {}
    for obj, stated in classes.items():
        cls = _one([str(c) for c in stated], "class", f"{source}: object {obj}")
        file_classes[obj] = None if cls is None else int(cls)
    return assemble_objects(fg, bg, file_classes, object_classes, shape, source, "clicks")


def _control_point(n: int, label: str, xyz: Sequence[float]) -> dict[str, Any]:
    return {"id": str(n), "label": label, "description": "", "position": list(xyz), "positionStatus": "defined"}


def write_slicer_markups(objects: Sequence[ObjectClicks], reference: sitk.Image, path: str | Path,
                         coordinate_system: str = "LPS") -> None:
    """Write ``objects`` as a markups file, one point list per object, in LPS or RAS world mm."""
    source = str(path)
    system = coordinate_system.upper()
    if system not in COORDINATE_SYSTEMS:
        raise ValueError(f"coordinate_system must be LPS or RAS, got {coordinate_system!r}")
    validate_objects(objects, array_shape(reference), source)
    markups = []
    for n, obj in enumerate(objects, start=1):
        labelled = [(f"obj{n}_fg_class{obj.label}", obj.foreground)]
        labelled += [(f"obj{n}_bg{i}", p) for i, p in enumerate(obj.background, start=1)]
        # _to_lps also maps LPS to RAS: negating x and y is its own inverse
        points = [_control_point(i, label, _to_lps(index_to_world(reference, p), system))
                  for i, (label, p) in enumerate(labelled, start=1)]
        markups.append({"type": "Fiducial", "coordinateSystem": system, "coordinateUnits": "mm",
                        "labelFormat": f"obj{n}-%d", "controlPoints": points})
    try:
        Path(path).write_text(json.dumps({"@schema": SCHEMA, "markups": markups}, indent=2) + "\n")
    except OSError as e:
        raise ClickError(f"{source}: cannot write the markups file ({e})") from None
