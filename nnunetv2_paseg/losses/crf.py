"""The multi-view CRF (mCRF) loss of PA-Seg (Zhai et al., IEEE TMI 2023, arXiv 2208.05669), computed offset by
offset, never as a (voxels x window) tensor."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from nnunetv2_paseg.losses import crf_triton

# Softmax outputs may overshoot [0, 1] by rounding; anything beyond this is not a probability.
_PROB_TOLERANCE = 1e-4
# On CPU, kernel weights below exp(-x) for these x (1e-30 in float32, 1e-300 in float64) are set to 0: products of
# such weights with probabilities fall into the subnormal range, where CPUs compute many times slower.
_CUTOFF_EXPONENT = {torch.float32: 69.0, torch.float64: 690.0}


def check_probs_and_image(probs: torch.Tensor, image: torch.Tensor, loss_name: str) -> None:
    """Fail early, naming ``loss_name``, unless probs (N, C, X, Y, Z) in [0, 1] and image (N, K, X, Y, Z) match."""
    for name, tensor in (("probs", probs), ("image", image)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{loss_name}: {name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.ndim != 5:
            raise ValueError(f"{loss_name}: {name} must have shape (N, C, X, Y, Z), got {tuple(tensor.shape)}")
        if not tensor.is_floating_point():
            raise TypeError(f"{loss_name}: {name} must be a floating point tensor, got {tensor.dtype}")
        if tensor.numel() == 0:
            raise ValueError(f"{loss_name}: {name} is empty, shape {tuple(tensor.shape)}")
    if probs.shape[0] != image.shape[0] or probs.shape[2:] != image.shape[2:]:
        raise ValueError(f"{loss_name}: probs {tuple(probs.shape)} and image {tuple(image.shape)} must share the "
                         "batch size and the spatial shape")
    if probs.device != image.device:
        raise ValueError(f"{loss_name}: probs on {probs.device} and image on {image.device}")
    low, high = torch.stack(torch.aminmax(probs.detach())).tolist()
    if not (low >= -_PROB_TOLERANCE and high <= 1 + _PROB_TOLERANCE):
        raise ValueError(f"{loss_name}: probs must be softmax probabilities in [0, 1], got values in "
                         f"[{low:.4g}, {high:.4g}] (pass softmax(logits), not logits)")


def view_offsets(radius: int) -> dict[tuple[int, int, int], int]:
    """In-slice neighbour offsets of the three views, one per unordered pair {d, -d}, with their view count.

    View ``a`` (slices orthogonal to axis ``a``) holds the 3D offsets with component ``a`` zero and the other two in
    [-radius, radius]. An offset along a single axis lies in two views' planes, all others in one.
    """
    counts: dict[tuple[int, int, int], int] = {}
    span = range(-radius, radius + 1)
    for axis in range(3):
        for u in span:
            for v in span:
                offset = [u, v]
                offset.insert(axis, 0)
                d = tuple(offset)
                # d and -d describe the same pairs; keep the one whose first non-zero component is positive.
                if any(d) and next(c for c in d if c) > 0:
                    counts[d] = counts.get(d, 0) + 1
    return counts


def _overlap(size: Sequence[int], offset: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Spatial slices (of i, of j = i + offset) covering every voxel pair inside the volume, or None if no pair."""
    first, second = [slice(None)] * 2, [slice(None)] * 2
    for n, d in zip(size, offset):
        if abs(d) >= n:
            return None
        first.append(slice(max(0, -d), n - max(0, d)))
        second.append(slice(max(0, d), n - max(0, -d)))
    return tuple(first), tuple(second)


def _buffer_view(buffer: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The first elements of a flat work buffer as a tensor of ``shape``."""
    return buffer[:shape.numel()].view(shape)


def _kernel(guide: torch.Tensor, sl_i: tuple[slice, ...], sl_j: tuple[slice, ...],
            buffers: tuple[torch.Tensor, torch.Tensor], zero: torch.Tensor) -> torch.Tensor:
    """Intensity part exp(-sum_K (g_i - g_j)^2) of k_ij on the overlap, shape (N, 1, ...); guide is pre-scaled.

    ``buffers``: flat work buffers of N K X Y Z and (if K > 1) N X Y Z elements; ``zero``: a 0-dim zero.
    """
    g_i = guide[sl_i]
    diff = torch.sub(g_i, guide[sl_j], out=_buffer_view(buffers[0], g_i.shape))
    # -(diff^2) in one pass, in place: 0 + (-1) * diff * diff.
    exponent = torch.addcmul(zero, diff, diff, value=-1.0, out=diff)
    if exponent.shape[1] > 1:
        shape = exponent.shape[:1] + (1,) + exponent.shape[2:]
        exponent = torch.sum(exponent, 1, keepdim=True, out=_buffer_view(buffers[1], shape))
    if exponent.device.type != "cpu":
        return exponent.exp_()
    # exp() itself is slow where it underflows, hence the clamp before it and the zeroing after it.
    cutoff = _CUTOFF_EXPONENT[exponent.dtype]
    kernel = exponent.clamp_(min=-cutoff).exp_()
    return torch.nn.functional.threshold_(kernel, 1.5 * math.exp(-cutoff), 0.0)


def _loop_energy_and_grad(probs: torch.Tensor, guide: torch.Tensor, offsets: list[tuple[int, int, int]],
                          weights: list[float], with_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Energy sum_d w_d sum_i k_d(i) (1 - p_i . p_{i+d}) over canonical offsets d, and its gradient w.r.t. p (None
    without ``with_grad``), one offset at a time.

    The gradient is accumulated while the energy is computed (it is linear in the upstream gradient), so each
    kernel weight is computed exactly once and nothing of window size is kept. 1 - p_i . p_j is formed per pair
    before summing, as the formula reads: summing k and k p_i . p_j apart and subtracting would lose float32
    precision when predictions are confident. Temporaries live in flat buffers reused across offsets: fresh
    allocations would page-fault on every offset.
    """
    size = probs.shape[2:]
    voxels = probs.numel() // probs.shape[1]
    kernel_buffers = (guide.new_empty(guide.numel()), guide.new_empty(voxels if guide.shape[1] > 1 else 0))
    disagreement_buffer = probs.new_empty(voxels)
    zero, one = probs.new_zeros(()), probs.new_ones(())
    grad = torch.zeros_like(probs) if with_grad else None
    pair_sums, used_weights = [], []
    for offset, weight in zip(offsets, weights):
        overlap = _overlap(size, offset)
        if overlap is None:
            continue
        sl_i, sl_j = overlap
        k = _kernel(guide, sl_i, sl_j, kernel_buffers, zero)
        p_i, p_j = probs[sl_i], probs[sl_j]
        disagreement = _buffer_view(disagreement_buffer, k.shape)
        for c in range(probs.shape[1]):
            torch.addcmul(one if c == 0 else disagreement, p_i[:, c:c + 1], p_j[:, c:c + 1], value=-1.0,
                          out=disagreement)
        pair_sums.append(disagreement.mul_(k).sum())  # much faster than torch.dot on CPU
        used_weights.append(weight)
        if with_grad:
            # d/dp_i of -w k_ij p_i.p_j is -w k_ij p_j, and symmetrically for p_j.
            grad[sl_i].addcmul_(k, p_j, value=-weight)
            grad[sl_j].addcmul_(k, p_i, value=-weight)
    if not pair_sums:
        return probs.new_zeros(()), grad
    return torch.dot(torch.tensor(used_weights, dtype=probs.dtype, device=probs.device), torch.stack(pair_sums)), grad


class _GatedCRFEnergy(torch.autograd.Function):
    """The energy of ``_loop_energy_and_grad`` with its gradient computed in the forward pass: on a GPU with Triton,
    by one fused kernel (``crf_triton``; the loop's ~10 kernels per offset are launch-bound there), else by the loop.
    Nothing of window size is kept for backward."""

    @staticmethod
    def forward(ctx, probs: torch.Tensor, guide: torch.Tensor, offsets: list[tuple[int, int, int]],
                weights: list[float], with_grad: bool, fused: bool) -> torch.Tensor:
        if fused and probs.is_cuda and probs.dtype == torch.float32 and crf_triton.available():
            signed, halves = crf_triton.signed_offsets(offsets, weights, probs.device)
            energy, grad = crf_triton.energy_and_grad(probs, guide, signed, halves, with_grad)
        else:
            energy, grad = _loop_energy_and_grad(probs, guide, offsets, weights, with_grad)
        if with_grad:
            ctx.save_for_backward(grad)
        return energy

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output: torch.Tensor):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None, None


class MultiViewGatedCRFLoss(nn.Module):
    """Multi-view CRF (mCRF) loss of PA-Seg's stage 1, memory O(voxels x (classes + channels)): the gated CRF loss
    (Obukhov et al., 2019; a Potts energy whose pairs are weighted by a Gaussian of distance and intensity difference)
    on the 2D slices of each of the three orthogonal views, averaged over the views.

    For each slicing direction v (slices orthogonal to axis 0, 1 or 2), every voxel i and every neighbour j != i in
    the same slice within the (2r+1) x (2r+1) window around i that lies inside the volume (no padding, no
    wrap-around):

    .. math::
        k_{ij} = \\exp\\Big(-\\frac{|pos_i - pos_j|^2}{2\\sigma_{xy}^2}
                           - \\frac{\\sum_K (x_i - x_j)^2}{2\\sigma_x^2}\\Big), \\qquad
        E_v = \\frac{1}{N X Y Z} \\sum_{i} \\sum_{j \\in W_v(i)} k_{ij}\\,\\big(1 - \\sum_c p_{ic} p_{jc}\\big),

    with pairs only inside one sample; ``pos`` in voxels, or in mm when ``spacing`` is given. Each ordered pair
    (i, j) counts, so every unordered pair counts twice. Dividing by all N X Y Z voxels of the batch equals the
    per-sample energy averaged over the batch. The loss is :math:`L_{mCRF} = (E_0 + E_1 + E_2) / 3`.

    On a CUDA GPU with Triton (shipped with torch's CUDA builds) the energy and its gradient come from one fused
    kernel (``crf_triton``); elsewhere, or with ``use_fused_kernel = False`` on the instance, from a loop over the
    offsets. Both compute the same sums.

    The image is a fixed guide: no gradient flows into it. Kernel weights and the energy are computed in float32
    (float64 if an input is float64), also under autocast. On CPU, kernel weights below 1e-30 (1e-300 in float64)
    count as 0, which keeps the arithmetic out of the slow subnormal range and moves the loss by less than that per
    pair. The gradient is computed together with the loss; memory is O(N X Y Z (C + K)).

    Args:
        radius: r, the in-slice window is (2r+1) x (2r+1). Positive integer.
        sigma_xy: spatial bandwidth sigma_xy (voxels, or mm with ``spacing``), > 0.
        sigma_intensity: intensity bandwidth sigma_x (units of the image, z-scored in nnU-Net), > 0.
        spacing: optional voxel spacing (sx, sy, sz) of the three spatial axes, in the order of the tensor axes,
            to measure |pos_i - pos_j| in mm. None (default): in voxels, as in the reference.

    Shapes:
        probs: (N, C, X, Y, Z) softmax probabilities in [0, 1].
        image: (N, K, X, Y, Z) the image the probabilities were predicted from (any K >= 1).
        output: scalar, >= 0 for probabilities that sum to 1 over C.

    Example:
        >>> import torch
        >>> loss = MultiViewGatedCRFLoss(radius=2, sigma_xy=5.0, spacing=(1.0, 1.0, 2.0))
        >>> logits, image = torch.randn(1, 2, 8, 8, 6), torch.randn(1, 1, 8, 8, 6)
        >>> value = loss(torch.softmax(logits, 1), image)
        >>> bool(value >= 0)
        True
    """

    def __init__(self, radius: int = 5, sigma_xy: float = 6.0, sigma_intensity: float = 0.1,
                 spacing: Sequence[float] | None = None) -> None:
        super().__init__()
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
            raise ValueError(f"MultiViewGatedCRFLoss: radius must be a positive integer, got {radius!r}")
        for name, value in (("sigma_xy", sigma_xy), ("sigma_intensity", sigma_intensity)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"MultiViewGatedCRFLoss: {name} must be a positive number, got {value!r}")
        if spacing is not None:
            spacing = tuple(float(s) for s in spacing)
            if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
                raise ValueError(f"MultiViewGatedCRFLoss: spacing must be 3 positive numbers, got {spacing!r}")
        self.radius = radius
        self.sigma_xy = float(sigma_xy)
        self.sigma_intensity = float(sigma_intensity)
        self.spacing = spacing
        self.use_fused_kernel = True
        # Per canonical offset: 2 (ordered pairs d and -d) x views containing d x spatial Gaussian, / 3 views.
        unit = spacing or (1.0, 1.0, 1.0)
        self._offsets = list(view_offsets(radius).items())
        self._weights = [2.0 * count / 3.0 * math.exp(-sum((d * s) ** 2 for d, s in zip(offset, unit))
                                                       / (2.0 * self.sigma_xy ** 2))
                         for offset, count in self._offsets]

    def extra_repr(self) -> str:
        return (f"radius={self.radius}, sigma_xy={self.sigma_xy}, sigma_intensity={self.sigma_intensity}, "
                f"spacing={self.spacing}")

    def forward(self, probs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        check_probs_and_image(probs, image, type(self).__name__)
        dtype = torch.float64 if torch.float64 in (probs.dtype, image.dtype) else torch.float32
        with torch.autocast(device_type=probs.device.type, enabled=False):
            p = probs.to(dtype).contiguous()
            # Scaling by 1 / (sqrt(2) sigma_x) makes the intensity factor of k_ij exp(-sum_K (g_i - g_j)^2).
            guide = (image.detach().to(dtype) * (1.0 / (math.sqrt(2.0) * self.sigma_intensity))).contiguous()
            n_voxels = probs.shape[0] * probs.shape[2:].numel()
            with_grad = torch.is_grad_enabled() and probs.requires_grad
            energy = _GatedCRFEnergy.apply(p, guide, [o for o, _ in self._offsets], self._weights, with_grad,
                                          self.use_fused_kernel)
            # Normalising last keeps the summands far from the subnormal range.
            return energy / n_voxels
