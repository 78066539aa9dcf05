"""The mCRF energy and its gradient in one fused Triton kernel, for CUDA tensors.

On a GPU, the offset-by-offset loop of ``crf._loop_energy_and_grad`` launches about ten small kernels per offset
(about 1,700 per step at radius 5) and is bound by the launches, not the arithmetic: measured on an H200, 30 ms at
2x2x64x64x48 and 36 ms at 2x2x128^3 (``benchmarks/results/gpu.md``). Here one program handles a block of voxels and
loops over every signed offset, gathering its neighbours' guide and probabilities: one launch per step.

With the signed offsets e (d and -d both) and W_e = w_d / 2 (``crf._GatedCRFEnergy``'s weight of the canonical
offset d, which counts each unordered pair once), for voxel i and neighbour j = i + e inside the volume:

    energy = sum_e W_e sum_i k_ij (1 - p_i . p_j),       grad_i = -2 sum_e W_e k_ij p_j,

the same sums as the loop's (each unordered pair is met from both ends). Float32 throughout.

Triton's interpreter (``TRITON_INTERPRET=1`` before triton is imported) runs the kernel on CPU tensors, which is how
the tests check it against the dense reference on a machine without a GPU.
"""
from __future__ import annotations

import importlib.util

import torch

BLOCK = 128


def available() -> bool:
    """Whether Triton can be imported (it ships with torch's CUDA builds for Linux)."""
    return importlib.util.find_spec("triton") is not None


_kernel = None


def _compiled_kernel():
    """The kernel, defined on first use, so that importing the losses never imports Triton."""
    global _kernel
    if _kernel is not None:
        return _kernel
    import triton
    import triton.language as tl

    @triton.jit
    def crf_energy_kernel(p_ptr, g_ptr, offsets_ptr, weights_ptr, energy_ptr, grad_ptr, n_offsets, X, Y, Z,
                          C: tl.constexpr, K: tl.constexpr, CP: tl.constexpr, KP: tl.constexpr,
                          WITH_GRAD: tl.constexpr, BLOCK_V: tl.constexpr):
        block = tl.program_id(0)
        sample = tl.program_id(1).to(tl.int64)
        volume = X * Y * Z
        v = block * BLOCK_V + tl.arange(0, BLOCK_V)
        inside = v < volume
        x = v // (Y * Z)
        y = (v // Z) % Y
        z = v % Z
        classes = tl.arange(0, CP)
        channels = tl.arange(0, KP)
        class_mask = classes[None, :] < C
        channel_mask = channels[None, :] < K
        p_base = p_ptr + sample * C * volume
        g_base = g_ptr + sample * K * volume
        p_i = tl.load(p_base + classes[None, :] * volume + v[:, None], mask=inside[:, None] & class_mask, other=0.0)
        g_i = tl.load(g_base + channels[None, :] * volume + v[:, None], mask=inside[:, None] & channel_mask,
                      other=0.0)
        energy = tl.zeros([BLOCK_V], dtype=tl.float32)
        grad = tl.zeros([BLOCK_V, CP], dtype=tl.float32)
        for o in range(n_offsets):
            dx = tl.load(offsets_ptr + 3 * o)
            dy = tl.load(offsets_ptr + 3 * o + 1)
            dz = tl.load(offsets_ptr + 3 * o + 2)
            weight = tl.load(weights_ptr + o)
            valid = inside & (x + dx >= 0) & (x + dx < X) & (y + dy >= 0) & (y + dy < Y) & (z + dz >= 0) \
                & (z + dz < Z)
            j = v + dx * Y * Z + dy * Z + dz
            g_j = tl.load(g_base + channels[None, :] * volume + j[:, None], mask=valid[:, None] & channel_mask,
                          other=0.0)
            diff = g_i - g_j
            kernel = tl.where(valid, tl.exp(-tl.sum(diff * diff, axis=1)), 0.0) * weight
            p_j = tl.load(p_base + classes[None, :] * volume + j[:, None], mask=valid[:, None] & class_mask,
                          other=0.0)
            energy += kernel * (1.0 - tl.sum(p_i * p_j, axis=1))
            if WITH_GRAD:
                grad += kernel[:, None] * p_j
        tl.store(energy_ptr + sample * tl.num_programs(0) + block, tl.sum(energy, axis=0))
        if WITH_GRAD:
            tl.store(grad_ptr + sample * C * volume + classes[None, :] * volume + v[:, None], -2.0 * grad,
                     mask=inside[:, None] & class_mask)

    _kernel = crf_energy_kernel
    return _kernel


def signed_offsets(offsets: list[tuple[int, int, int]], weights: list[float], device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, 3) int32 signed offsets and (M,) float32 weights W_e from the canonical offsets d and their weights w_d:
    d and -d, each with w_d / 2."""
    signed = [o for d in offsets for o in (d, tuple(-c for c in d))]
    halves = [w / 2.0 for w in weights for _ in range(2)]
    return (torch.tensor(signed, dtype=torch.int32, device=device),
            torch.tensor(halves, dtype=torch.float32, device=device))


def energy_and_grad(probs: torch.Tensor, guide: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor,
                    with_grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(energy, gradient w.r.t. probs or None) of the mCRF for contiguous float32 probs (N, C, X, Y, Z) and
    pre-scaled guide (N, K, X, Y, Z) on one device, with ``signed_offsets``' tensors on that device."""
    if probs.dtype != torch.float32 or guide.dtype != torch.float32:
        raise TypeError(f"crf_triton: float32 tensors expected, got {probs.dtype} and {guide.dtype}")
    import triton

    n, c = probs.shape[:2]
    k = guide.shape[1]
    x, y, z = probs.shape[2:]
    blocks = triton.cdiv(x * y * z, BLOCK)
    partial = probs.new_empty(n * blocks)
    grad = torch.empty_like(probs) if with_grad else probs.new_empty(1)
    _compiled_kernel()[(blocks, n)](probs, guide, offsets, weights, partial, grad, offsets.shape[0], x, y, z,
                                    C=c, K=k, CP=triton.next_power_of_2(c), KP=triton.next_power_of_2(k),
                                    WITH_GRAD=with_grad, BLOCK_V=BLOCK)
    return partial.sum(), grad if with_grad else None
