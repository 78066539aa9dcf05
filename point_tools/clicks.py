"""The click model: one foreground click and six background clicks per object (SPEC section 1).

Voxel indices are in numpy array order (axis0, axis1, axis2) of ``sitk.GetArrayFromImage(image)``,
i.e. (z, y, x) for SimpleITK images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


def validate_objects(objects: Sequence[ObjectClicks], shape: Sequence[int], source: str) -> None:
    """Raise ClickError (naming ``source``) unless every object is a usable 7-click annotation in ``shape``."""
    if not objects:
        raise ClickError(f"{source}: no clicks found")
    for n, obj in enumerate(objects, start=1):
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
        low, high = obj.box()
        if not all(lo <= f <= hi for lo, f, hi in zip(low, obj.foreground, high)):
            raise ClickError(f"{where}: the background clicks (box {low}..{high}) do not enclose the foreground "
                             f"click {obj.foreground}")
