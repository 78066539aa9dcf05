"""Whether a structure's labelled surface is an edge of the image: the why of the pseudo-label table's misses.

A pseudo-label can only reach the labelled surface with high precision where the image shows it. From the image and
a structure's label alone (no clicks), ``benchmarks.pseudo_label_tuning`` reports per structure:

- ``edge_auc``: the probability that a voxel of the structure's inner surface layer is more object-like in intensity
  than a voxel of the layer just outside it (the area under the ROC curve of intensity between the two layers,
  "object-like" being the side of the interior's median). 1.0: a clean edge; 0.5: the two layers look the same, the
  surface is not in the image.
- ``interior_share``: the share of the structure more than one voxel deep (the structure eroded by one voxel,
  6-connectivity): what a label that stays off the surface layer can cover at most.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage, stats

_SIX_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)


class BoundaryContrast(NamedTuple):
    edge_auc: float
    interior_share: float
    voxels: int


def boundary_contrast(image: np.ndarray, mask: np.ndarray) -> BoundaryContrast:
    """Edge AUC between the inner and the outer surface layer of ``mask`` in ``image``, and its interior share.

    Args:
        image: (Z, Y, X) intensities.
        mask: (Z, Y, X) bool, the structure; it needs an interior (a voxel more than one voxel deep).

    Returns:
        ``edge_auc`` in [0, 1] (0.5: no edge; below it the inner layer looks more like the outside),
        ``interior_share`` in [0, 1), ``voxels`` of the structure.

    Example:
        >>> z = np.zeros((9, 9, 9), bool); z[2:7, 2:7, 2:7] = True
        >>> round(boundary_contrast(z.astype(float), z).edge_auc, 2)
        1.0
    """
    if image.shape != mask.shape:
        raise ValueError(f"image {image.shape} and mask {mask.shape} differ in shape")
    interior = ndimage.binary_erosion(mask, _SIX_NEIGHBOURS)
    if not interior.any():
        raise ValueError("the structure has no voxel more than one voxel deep")
    inner = image[mask & ~interior]
    outer = image[ndimage.binary_dilation(mask, _SIX_NEIGHBOURS) & ~mask]
    # Which side is "object": the interior's median against the outer layer's.
    sign = 1.0 if np.median(image[interior]) >= np.median(outer) else -1.0
    u = stats.mannwhitneyu(sign * inner, sign * outer).statistic
    auc = float(u / (inner.size * outer.size))
    return BoundaryContrast(auc, float(interior.sum() / mask.sum()), int(mask.sum()))
