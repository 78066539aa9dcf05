"""Small synthetic 3D volumes with a known answer, for the tests."""
from __future__ import annotations

import numpy as np
import SimpleITK as sitk


def ellipsoid_case(shape: tuple[int, int, int] = (32, 40, 36), centre: tuple[float, float, float] | None = None,
                   radii: tuple[float, float, float] = (7, 9, 8), fg_value: float = 200.0, bg_value: float = 80.0,
                   noise: float = 5.0, seed: int = 0, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
                   origin: tuple[float, float, float] = (0.0, 0.0, 0.0),
                   direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)) -> tuple[sitk.Image, sitk.Image]:
    """A bright ellipsoid in a darker body with a zero-valued margin (air) around it.

    ``shape`` and ``radii`` are in numpy (z, y, x) order, voxels. Returns (image, mask) as SimpleITK images
    with the given geometry; the mask is 1 inside the ellipsoid.
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    c = centre if centre is not None else tuple((s - 1) / 2 for s in shape)
    inside = ((zz - c[0]) / radii[0]) ** 2 + ((yy - c[1]) / radii[1]) ** 2 + ((xx - c[2]) / radii[2]) ** 2 <= 1
    image = np.full(shape, bg_value, np.float32)
    image[inside] = fg_value
    image += rng.normal(0, noise, shape).astype(np.float32)
    image[:2] = image[-2:] = 0  # empty slab: voxels at the image minimum are background by rule
    image = np.clip(image, 0, None)
    img = sitk.GetImageFromArray(image)
    seg = sitk.GetImageFromArray(inside.astype(np.uint8))
    for out in (img, seg):
        out.SetSpacing(spacing)
        out.SetOrigin(origin)
        out.SetDirection(direction)
    return img, seg
