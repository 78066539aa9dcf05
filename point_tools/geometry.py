"""World (physical, mm) <-> voxel mapping and grid comparison for SimpleITK images.

Voxel indices are in numpy array order (z, y, x) of ``sitk.GetArrayFromImage(image)``; world points are
ITK physical points (x, y, z) in mm, in ITK's LPS convention. SimpleITK's own index order is (x, y, z),
hence the reversals below.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import SimpleITK as sitk

from point_tools.clicks import ClickError, Index

# Tolerances for "same grid": header round-off (NIfTI stores float32 quaternions) must not count as a
# mismatch, a shift of a visible fraction of a voxel must.
SPACING_RTOL = 1e-4
ORIGIN_ATOL_VOXELS = 1e-3
DIRECTION_ATOL = 1e-4


def index_to_world(reference: sitk.Image, idx: Sequence[float]) -> tuple[float, float, float]:
    """World point (x, y, z) mm of the (possibly fractional) numpy index (z, y, x) of ``reference``."""
    return tuple(reference.TransformContinuousIndexToPhysicalPoint([float(v) for v in reversed(idx)]))


def world_to_continuous_index(reference: sitk.Image, xyz: Sequence[float]) -> tuple[float, float, float]:
    """Fractional numpy index (z, y, x) of the world point (x, y, z) mm."""
    return tuple(reference.TransformPhysicalPointToContinuousIndex([float(v) for v in xyz]))[::-1]


def world_to_index(reference: sitk.Image, xyz: Sequence[float]) -> Index:
    """Numpy index (z, y, x) of the voxel whose centre is nearest to the world point (x, y, z) mm.

    Half-way points round up (floor(v + 0.5)), independent of numpy's round-half-to-even. The index may
    lie outside the image; ``inside`` tells.
    """
    continuous = world_to_continuous_index(reference, xyz)
    return tuple(int(math.floor(v + 0.5)) for v in continuous)  # type: ignore[return-value]


def inside(idx: Sequence[int], shape: Sequence[int]) -> bool:
    """Whether the index lies in an array of ``shape``."""
    return len(idx) == len(shape) and all(0 <= int(i) < int(s) for i, s in zip(idx, shape))


def array_shape(image: sitk.Image) -> tuple[int, ...]:
    """Numpy shape (z, y, x) of a SimpleITK image."""
    return tuple(image.GetSize())[::-1]


def require_3d(image: sitk.Image, source: str) -> None:
    """Raise ClickError unless ``image`` is a 3D single-component image."""
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise ClickError(f"{source}: expected a 3D scalar image, got {image.GetDimension()}D with "
                         f"{image.GetNumberOfComponentsPerPixel()} component(s) per voxel")


def grid_mismatch(image: sitk.Image, reference: sitk.Image) -> str | None:
    """Why ``image`` is not on the grid of ``reference`` (size, spacing, origin, direction), or None if it is."""
    if image.GetDimension() != reference.GetDimension():
        return f"dimension {image.GetDimension()} != {reference.GetDimension()}"
    if image.GetSize() != reference.GetSize():
        return f"size (x,y,z) {image.GetSize()} != {reference.GetSize()}"
    spacing, ref_spacing = np.array(image.GetSpacing()), np.array(reference.GetSpacing())
    if not np.allclose(spacing, ref_spacing, rtol=SPACING_RTOL, atol=0):
        return f"spacing (x,y,z) {tuple(spacing)} != {tuple(ref_spacing)}"
    origin_atol = ORIGIN_ATOL_VOXELS * float(ref_spacing.min())
    if not np.allclose(image.GetOrigin(), reference.GetOrigin(), rtol=0, atol=origin_atol):
        return f"origin {image.GetOrigin()} != {reference.GetOrigin()}"
    if not np.allclose(image.GetDirection(), reference.GetDirection(), rtol=0, atol=DIRECTION_ATOL):
        return f"direction {image.GetDirection()} != {reference.GetDirection()}"
    return None
