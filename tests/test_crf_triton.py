"""The fused Triton mCRF kernel (``nnunetv2_paseg.losses.crf_triton``, the CUDA path) against the dense reference
and the offset loop, run on the CPU by Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before Triton
is imported: hence a subprocess), and on CUDA through the loss where a GPU exists."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, crf_triton
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.skipif(not crf_triton.available(), reason="Triton is not installed (a CPU-only torch)")

# n, c, k, size, radius, spacing, sigma_intensity: as tests/test_losses.py's CRF cases, where the dense reference is
# the yardstick (a 2-voxel axis: offsets with no pair at all; a single slice; K > 1; C not a power of 2).
CASES = [
    (1, 2, 1, (5, 6, 7), 1, None, 0.1),
    (1, 4, 2, (7, 8, 5), 3, None, 0.3),
    (1, 2, 2, (3, 2, 4), 5, None, 1.0),
    (2, 3, 1, (1, 6, 5), 3, None, 0.5),
    (1, 2, 1, (6, 7, 8), 2, (1.0, 0.8, 2.5), 0.2),
]

_SCRIPT = r"""
import json, math, sys, torch
from nnunetv2_paseg.losses import crf_triton
from nnunetv2_paseg.losses.crf import MultiViewGatedCRFLoss, _loop_energy_and_grad
from benchmarks.reference_losses import dense_multi_view_gated_crf

rows = []
for n, c, k, size, radius, spacing, sigma in json.loads(sys.argv[1]):
    g = torch.Generator().manual_seed(sum(size) + radius)
    probs = torch.softmax(2 * torch.randn(n, c, *size, generator=g), 1).contiguous()
    image = 0.1 * torch.randn(n, k, *size, generator=g)
    loss = MultiViewGatedCRFLoss(radius=radius, sigma_intensity=sigma, spacing=spacing)
    guide = (image * (1.0 / (math.sqrt(2.0) * sigma))).contiguous()
    offsets, weights = [o for o, _ in loss._offsets], loss._weights
    signed, halves = crf_triton.signed_offsets(offsets, weights, probs.device)
    energy, grad = crf_triton.energy_and_grad(probs, guide, signed, halves, True)
    energy_only, no_grad = crf_triton.energy_and_grad(probs, guide, signed, halves, False)
    loop_energy, loop_grad = _loop_energy_and_grad(probs, guide, offsets, weights, True)
    p64 = probs.double().requires_grad_()
    dense = dense_multi_view_gated_crf(p64, image.double(), radius, 6.0, sigma, spacing)
    (dense_grad,) = torch.autograd.grad(dense, p64)
    voxels = n * math.prod(size)
    rows.append({"energy": energy.item() / voxels, "energy_only": energy_only.item() / voxels,
                 "no_grad": no_grad is None, "dense": dense.item(), "loop": loop_energy.item() / voxels,
                 "grad_vs_loop": ((grad - loop_grad).abs().max() / loop_grad.abs().max()).item(),
                 "grad_vs_dense": ((grad.double() / voxels - dense_grad).abs().max()
                                   / dense_grad.abs().max()).item()})
print(json.dumps(rows))
"""


def test_fused_kernel_matches_the_dense_reference_and_the_loop_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(CASES)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    for case, row in zip(CASES, rows):
        assert row["dense"] > 0, case
        assert row["energy"] == pytest.approx(row["dense"], rel=1e-5), case
        assert row["energy"] == pytest.approx(row["loop"], rel=1e-5), case
        assert row["energy_only"] == row["energy"] and row["no_grad"], case
        assert row["grad_vs_loop"] < 1e-5 and row["grad_vs_dense"] < 1e-5, (case, row)


def test_signed_offsets_split_each_canonical_weight_between_d_and_minus_d():
    offsets, weights = crf_triton.signed_offsets([(0, 1, 2), (1, 0, 0)], [0.5, 3.0], torch.device("cpu"))
    assert offsets.tolist() == [[0, 1, 2], [0, -1, -2], [1, 0, 0], [-1, 0, 0]]
    assert weights.tolist() == [0.25, 0.25, 1.5, 1.5]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_crf_on_cuda_fused_kernel_matches_the_loop():
    generator = torch.Generator().manual_seed(3)
    probs = torch.softmax(2 * torch.randn(2, 3, 20, 24, 18, generator=generator), 1)
    image = 0.2 * torch.randn(2, 1, 20, 24, 18, generator=generator)
    loss = MultiViewGatedCRFLoss(radius=5, spacing=(1.0, 0.9, 1.2))
    cpu_probs = probs.clone().requires_grad_()
    expected = loss(cpu_probs, image)
    expected.backward()
    for fused in (True, False):
        loss.use_fused_kernel = fused
        cuda_probs = probs.cuda().requires_grad_()
        value = loss(cuda_probs, image.cuda())
        value.backward()
        assert float(value) == pytest.approx(float(expected), rel=1e-5), fused
        assert torch.allclose(cuda_probs.grad.cpu(), cpu_probs.grad, rtol=1e-4, atol=1e-7), fused
