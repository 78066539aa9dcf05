"""The click model of PA-Seg (Zhai et al., IEEE TMI 2023, arXiv 2208.05669): per object, one foreground click
inside it and six background clicks just outside it, one beyond each extreme along each image axis (their box
encloses the object).

Voxel indices are in numpy array order (axis0, axis1, axis2) of ``sitk.GetArrayFromImage(image)``,
i.e. (z, y, x) for SimpleITK images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

Index = tuple[int, int, int]


class ClickError(ValueError):
    """Invalid click annotation; the message names the file or case and what is wrong."""


@dataclass(frozen=True)
class ObjectClicks:
    """Clicks of one target object.

    foreground: the click inside the object.
    background: the clicks just outside the object, one beyond each extreme along each axis (6 in the
        protocol); their inclusive bounding box is the object's region of interest.
    label: the object's class, 1..K.
    """

    foreground: Index
    background: tuple[Index, ...]
    label: int = 1

    def box(self) -> tuple[Index, Index]:
        """Inclusive (low, high) corners of the background clicks' bounding box."""
        low = tuple(min(p[a] for p in self.background) for a in range(3))
        high = tuple(max(p[a] for p in self.background) for a in range(3))
        return low, high  # type: ignore[return-value]


def validate_objects(objects: Sequence[ObjectClicks], shape: Sequence[int], source: str,
                     object_ids: Sequence[int] | None = None) -> None:
    """Raise ClickError (naming ``source``) unless every object is a usable 7-click annotation in ``shape``.

    ``object_ids`` names the objects in messages as the file numbers them (default 1, 2, ...).
    """
    if not objects:
        raise ClickError(f"{source}: no clicks found")
    for n, obj in zip(object_ids or range(1, len(objects) + 1), objects):
        where = f"{source}: object {n} (class {obj.label})"
        if obj.label < 1:
            raise ClickError(f"{where}: class must be >= 1")
        if obj.foreground is None:
            raise ClickError(f"{where}: no foreground click")
        if len(obj.background) < 2:
            raise ClickError(f"{where}: {len(obj.background)} background click(s); at least 2 (6 in the protocol) "
                             "are needed to span the region of interest")
        for kind, point in [("foreground", obj.foreground)] + [("background", p) for p in obj.background]:
            if len(point) != 3 or not all(0 <= int(v) < int(s) for v, s in zip(point, shape)):
                raise ClickError(f"{where}: {kind} click {tuple(point)} lies outside the image of shape {tuple(shape)}")
        # Strictly: each background click lies beyond an extreme of the object, so a foreground click on a
        # face of the box means a missing or misplaced background click, and the box would cut the object -
        # unless that face is the image border, beyond which the object cannot go.
        low, high = obj.box()
        if not all((lo < f or f == 0) and (f < hi or f == int(s) - 1)
                   for lo, f, hi, s in zip(low, obj.foreground, high, shape)):
            raise ClickError(f"{where}: the background clicks (box {low}..{high}) do not enclose the foreground "
                             f"click {obj.foreground} on both sides along every axis")


def resolve_class(obj: int, from_file: int | None, object_classes: dict[int, int] | None, source: str) -> int:
    """Class of object ``obj`` (1-based) from the file's own statement and the caller's mapping.

    Binary (class 1) when neither says anything; when both do, they must agree. A mapping that is given but
    does not name an object of the file is an error, not a silent class 1.
    """
    given = None if object_classes is None else object_classes.get(obj)
    if from_file is not None and given is not None and from_file != given:
        raise ClickError(f"{source}: object {obj} has class {from_file} in the file but {given} in object_classes")
    label = from_file if from_file is not None else given
    if label is None:
        if object_classes is not None:
            raise ClickError(f"{source}: object {obj} has no class in the object-to-class mapping "
                             f"{dict(sorted(object_classes.items()))}")
        return 1
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or label < 1:
        raise ClickError(f"{source}: object {obj} has class {label!r}; classes are integers >= 1")
    return int(label)


def assemble_objects(foreground: Mapping[int, Sequence[Index]], background: Mapping[int, Sequence[Index]],
                     file_classes: Mapping[int, int | None], object_classes: dict[int, int] | None,
                     shape: Sequence[int], source: str, unit: str) -> list[ObjectClicks]:
    """Validated objects, ordered by object number, from the clicks a reader grouped per object.

    ``file_classes`` holds the class each object has in the file (None: not stated); ``unit`` is what one click is
    called in the file's own terms (e.g. "rows" of a CSV), so that errors read like the file.
    """
    objects = []
    numbers = sorted(foreground.keys() | background.keys())
    for obj in numbers:
        where = f"{source}: object {obj}"
        found = len(foreground.get(obj, ()))
        if found != 1:
            raise ClickError(f"{where}: {found} foreground {unit}; exactly one is needed")
        if not background.get(obj):
            raise ClickError(f"{where}: no background {unit}")
        label = resolve_class(obj, file_classes.get(obj), object_classes, source)
        objects.append(ObjectClicks(foreground[obj][0], tuple(background[obj]), label))
    validate_objects(objects, shape, source, numbers)
    return objects
