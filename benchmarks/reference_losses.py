"""Slow, literal implementations of PA-Seg's multi-view CRF (mCRF) and variance minimisation (VM) losses, as
``MultiViewGatedCRFLoss`` and ``VarianceMinimizationLoss`` state their formulas: the yardstick for tests and
benchmarks only (the lab's, not the package's).

They share no code with nnunetv2_paseg/losses/crf.py and variance.py: the CRF one materialises every (voxel, window
position) pair with ``F.unfold`` exactly as the formula reads, which costs O(voxels x window x classes) memory.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def dense_multi_view_gated_crf(probs: torch.Tensor, image: torch.Tensor, radius: int = 5, sigma_xy: float = 6.0,
                               sigma_intensity: float = 0.1,
                               spacing: Sequence[float] | None = None) -> torch.Tensor:
    """L_mCRF (``MultiViewGatedCRFLoss``'s formula) by unfolding each view's slices; probs (N, C, X, Y, Z), image
    (N, K, X, Y, Z)."""
    n, c, *size = probs.shape
    k = image.shape[1]
    spacing = spacing or (1.0, 1.0, 1.0)
    window = 2 * radius + 1
    steps = torch.arange(-radius, radius + 1, dtype=probs.dtype, device=probs.device)
    # unfold enumerates window positions row-major: (row offset, column offset).
    row, col = torch.meshgrid(steps, steps, indexing="ij")
    not_centre = ((row != 0) | (col != 0)).reshape(1, -1, 1).to(probs.dtype)
    energies = []
    for axis in range(3):
        a, b = [d for d in range(3) if d != axis]
        order = (0, 2 + axis, 1, 2 + a, 2 + b)
        slices = n * size[axis]
        h, w = size[a], size[b]
        p = probs.permute(order).reshape(slices, c, h, w)
        x = image.detach().permute(order).reshape(slices, k, h, w)
        p_win = F.unfold(p, window, padding=radius).view(slices, c, window * window, h * w)
        x_win = F.unfold(x, window, padding=radius).view(slices, k, window * window, h * w)
        inside = F.unfold(torch.ones(1, 1, h, w, dtype=probs.dtype, device=probs.device), window,
                          padding=radius).view(1, window * window, h * w)
        distance2 = ((row * spacing[a]) ** 2 + (col * spacing[b]) ** 2).reshape(1, -1, 1)
        intensity2 = ((x_win - x.reshape(slices, k, 1, h * w)) ** 2).sum(1)
        kernel = torch.exp(-distance2 / (2 * sigma_xy ** 2) - intensity2 / (2 * sigma_intensity ** 2))
        kernel = kernel * inside * not_centre
        agreement = (p_win * p.reshape(slices, c, 1, h * w)).sum(1)
        energies.append((kernel * (1 - agreement)).sum() / (n * size[0] * size[1] * size[2]))
    return sum(energies) / 3


def looped_variance_minimization(probs: torch.Tensor, image: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """L_VM (``VarianceMinimizationLoss``'s formula), one (sample, channel, class) at a time."""
    total = probs.new_zeros(())
    n, c = probs.shape[:2]
    k = image.shape[1]
    for sample in range(n):
        for channel in range(k):
            x = image[sample, channel].detach()
            for cls in range(c):
                weight = probs[sample, cls]
                if cls == 0:
                    weight = weight * (x != x.min())
                mean = (weight * x).sum() / (weight.sum() + eps)
                total = total + (weight * (x - mean) ** 2).sum() / (weight.sum() + eps)
    return total / (n * k)
