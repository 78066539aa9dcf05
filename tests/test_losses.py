"""MultiViewGatedCRFLoss and VarianceMinimizationLoss against literal implementations of their formulas
(``benchmarks/reference_losses.py``)."""
from __future__ import annotations

import doctest
import math

import pytest
import torch

from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, VarianceMinimizationLoss
from benchmarks.reference_losses import dense_multi_view_gated_crf, looped_variance_minimization


def random_inputs(n: int, c: int, k: int, size: tuple[int, int, int], seed: int = 0, image_scale: float = 0.1,
                  dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(n, c, *size, generator=generator, dtype=dtype), 1)
    image = image_scale * torch.randn(n, k, *size, generator=generator, dtype=dtype)
    return probs.requires_grad_(), image


def value_and_grad(loss_fn, probs: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    value = loss_fn(probs, image)
    (grad,) = torch.autograd.grad(value, probs)
    return value.detach(), grad


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual - expected).abs().max() / expected.abs().max())


CRF_CASES = [
    # n, c, k, size, radius, spacing, sigma_intensity
    (1, 2, 1, (5, 6, 7), 1, None, 0.1),
    (2, 3, 1, (9, 4, 11), 2, None, 0.1),
    (1, 4, 2, (7, 8, 5), 5, None, 0.3),
    (2, 2, 1, (13, 12, 11), 5, None, 0.1),
    (1, 2, 2, (3, 2, 4), 5, None, 1.0),  # every axis shorter than the window
    (1, 3, 1, (1, 6, 5), 3, None, 0.5),  # a single slice along axis 0
    (2, 2, 1, (6, 7, 8), 2, (1.0, 0.8, 2.5), 0.2),
]


@pytest.mark.parametrize("n, c, k, size, radius, spacing, sigma_intensity", CRF_CASES)
def test_crf_matches_dense_reference(n, c, k, size, radius, spacing, sigma_intensity):
    probs, image = random_inputs(n, c, k, size, seed=sum(size) + radius)
    loss = MultiViewGatedCRFLoss(radius=radius, sigma_intensity=sigma_intensity, spacing=spacing)
    value, grad = value_and_grad(loss, probs, image)
    ref_value, ref_grad = value_and_grad(
        lambda p, x: dense_multi_view_gated_crf(p, x, radius, 6.0, sigma_intensity, spacing), probs, image)
    assert ref_value > 0
    assert abs(float(value - ref_value)) / float(ref_value) < 1e-5
    assert relative_error(grad, ref_grad) < 1e-5


def test_crf_float32_matches_dense_reference():
    probs, image = random_inputs(2, 2, 1, (10, 9, 8), image_scale=0.2)
    value, grad = value_and_grad(MultiViewGatedCRFLoss(radius=3), probs.float().detach().requires_grad_(),
                                 image.float())
    ref_value, ref_grad = value_and_grad(lambda p, x: dense_multi_view_gated_crf(p, x, 3), probs, image)
    assert value.dtype == torch.float32
    assert abs(float(value) - float(ref_value)) / float(ref_value) < 1e-4
    assert relative_error(grad.double(), ref_grad) < 1e-4


def test_crf_float32_keeps_precision_for_confident_predictions():
    # 1 - p_i.p_j ~ 1e-4 everywhere: summing k and k p_i.p_j apart and subtracting would lose about 1e-3 here.
    generator = torch.Generator().manual_seed(3)
    minority = 1e-4 * torch.rand(2, 1, 16, 16, 12, generator=generator, dtype=torch.float64)
    probs = torch.cat([1 - minority, minority], 1)
    image = 0.05 * torch.randn(2, 1, 16, 16, 12, generator=generator, dtype=torch.float64)
    expected = dense_multi_view_gated_crf(probs, image)
    value = MultiViewGatedCRFLoss()(probs.float().requires_grad_(), image.float())
    assert abs(float(value.detach()) - float(expected)) / float(expected) < 1e-4


def test_crf_two_voxels_by_hand():
    # Voxels (0,0,0) and (0,0,1): neighbours in the views slicing along axes 0 and 1, not in the one along axis 2.
    probs = torch.tensor([[0.9, 0.3], [0.1, 0.7]], dtype=torch.float64).view(1, 2, 1, 1, 2)
    image = torch.tensor([0.0, 0.05], dtype=torch.float64).view(1, 1, 1, 1, 2)
    k = math.exp(-1 / (2 * 6.0 ** 2) - 0.05 ** 2 / (2 * 0.1 ** 2))
    per_view = 2 * k * (1 - (0.9 * 0.3 + 0.1 * 0.7)) / 2  # both ordered pairs, divided by 2 voxels
    expected = (per_view + per_view + 0) / 3
    assert float(MultiViewGatedCRFLoss(radius=1)(probs, image)) == pytest.approx(expected, rel=1e-12)
    assert float(dense_multi_view_gated_crf(probs, image, radius=1)) == pytest.approx(expected, rel=1e-12)


def test_crf_is_zero_for_a_constant_hard_labelling():
    probs = torch.zeros(1, 3, 6, 5, 4)
    probs[:, 1] = 1
    assert float(MultiViewGatedCRFLoss()(probs, torch.randn(1, 1, 6, 5, 4))) == 0.0


def test_crf_without_grad_equals_with_grad():
    probs, image = random_inputs(2, 3, 1, (8, 7, 6))
    loss = MultiViewGatedCRFLoss(radius=2)
    with torch.no_grad():
        without = loss(probs, image)
    assert float(without) == pytest.approx(float(loss(probs, image).detach()), rel=1e-12)


def test_crf_gradcheck():
    probs, image = random_inputs(1, 2, 2, (3, 4, 3), image_scale=0.1)
    loss = MultiViewGatedCRFLoss(radius=2, spacing=(1.0, 2.0, 0.5))
    assert torch.autograd.gradcheck(lambda p: loss(p, image), (probs,))


def test_crf_image_gets_no_gradient():
    probs, image = random_inputs(1, 2, 1, (4, 4, 4))
    image.requires_grad_()
    MultiViewGatedCRFLoss(radius=1)(probs, image).backward()
    assert image.grad is None and probs.grad is not None


def test_crf_cpu_bfloat16_autocast_runs_in_float32():
    probs, image = random_inputs(1, 2, 1, (6, 6, 6), dtype=torch.float32)
    with torch.no_grad():
        expected = [loss(probs.bfloat16().float(), image.bfloat16().float())
                    for loss in (MultiViewGatedCRFLoss(radius=2), VarianceMinimizationLoss())]
    low_probs = probs.detach().bfloat16().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        values = [loss(low_probs, image.bfloat16()) for loss in (MultiViewGatedCRFLoss(radius=2),
                                                                   VarianceMinimizationLoss())]
    sum(values).backward()
    assert low_probs.grad.dtype == torch.bfloat16
    for value, reference in zip(values, expected):
        assert value.dtype == torch.float32
        assert float(value.detach()) == pytest.approx(float(reference), rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_crf_cuda_autocast_matches_cpu():
    probs, image = random_inputs(2, 2, 1, (16, 12, 10), dtype=torch.float32)
    expected, expected_grad = value_and_grad(MultiViewGatedCRFLoss(radius=3), probs, image)
    cuda_probs = probs.detach().cuda().half().requires_grad_()
    with torch.autocast("cuda"):
        value = MultiViewGatedCRFLoss(radius=3)(cuda_probs, image.cuda().half())
    value.backward()
    assert value.dtype == torch.float32
    with torch.no_grad():
        reference = MultiViewGatedCRFLoss(radius=3)(probs.half().float(), image.half().float())
    assert float(value.detach()) == pytest.approx(float(reference), rel=1e-5)
    assert float(value.detach()) == pytest.approx(float(expected), rel=1e-2)
    assert relative_error(cuda_probs.grad.float().cpu(), expected_grad) < 1e-2


@pytest.mark.parametrize("n, c, k, size", [(1, 2, 1, (5, 6, 7)), (2, 3, 2, (4, 9, 3)), (3, 4, 1, (2, 3, 5))])
def test_variance_matches_looped_reference(n, c, k, size):
    probs, image = random_inputs(n, c, k, size, seed=n + c, image_scale=1.0)
    image = image.clone()
    image[:, :, 0] = image.amin()  # a slab at the minimum, which the background class must ignore
    value, grad = value_and_grad(VarianceMinimizationLoss(), probs, image)
    ref_value, ref_grad = value_and_grad(looped_variance_minimization, probs, image)
    assert abs(float(value - ref_value)) / float(ref_value) < 1e-5
    assert relative_error(grad, ref_grad) < 1e-5


def test_variance_by_hand_and_background_mask():
    # Class 1 holds intensities 1 and 3 (variance 1); background holds 0 (the minimum, masked) and 5 (variance 0).
    image = torch.tensor([0.0, 1.0, 3.0, 5.0], dtype=torch.float64).view(1, 1, 1, 1, 4)
    probs = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.float64).view(1, 2, 1, 1, 4)
    assert float(VarianceMinimizationLoss()(probs, image)) == pytest.approx(1.0, rel=1e-5)
    # A fifth voxel of no class at a lower minimum unmasks intensity 0: the background holds 0 and 5 (variance 6.25).
    image = torch.tensor([0.0, 1.0, 3.0, 5.0, -10.0], dtype=torch.float64).view(1, 1, 1, 1, 5)
    probs = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 1, 0, 0]], dtype=torch.float64).view(1, 2, 1, 1, 5)
    assert float(VarianceMinimizationLoss()(probs, image)) == pytest.approx(1.0 + 6.25, rel=1e-5)


def test_variance_normalised_by_voxels_by_hand():
    # As test_variance_by_hand_and_background_mask, over V = 4 voxels: class 1's squared deviations 1 + 1, the
    # background's 0 (its voxel at the minimum masked): (2 + 0) / 4.
    image = torch.tensor([0.0, 1.0, 3.0, 5.0], dtype=torch.float64).view(1, 1, 1, 1, 4)
    probs = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0]], dtype=torch.float64).view(1, 2, 1, 1, 4)
    assert float(VarianceMinimizationLoss(normalise="voxels")(probs, image)) == pytest.approx(0.5, rel=1e-5)
    with pytest.raises(ValueError, match="normalise must be 'class' or 'voxels'"):
        VarianceMinimizationLoss(normalise="mass")


@pytest.mark.parametrize("normalise, shell_joins", [("voxels", True), ("class", False)])
def test_variance_normalisation_decides_where_a_small_dark_object_ends(normalise, shell_joins):
    """A small dark object (a 3^3 core at 0 in a 5^3 partial-volume shell at 0.4, nearer the core than the
    surround) in a large bright surround (1): per voxel count the shell joins the object (the nearer mean); per
    class mass the object keeps only its darkest voxels."""
    image = torch.ones(1, 1, 15, 15, 15, dtype=torch.float64)
    image[..., 5:10, 5:10, 5:10] = 0.4
    image[..., 6:9, 6:9, 6:9] = 0.0
    image[..., 0, 0, 0] = -1.0  # the masked minimum, as the zero surround after z-scoring
    core, with_shell = image == 0.0, (image >= 0.0) & (image < 0.5)
    loss = VarianceMinimizationLoss(normalise=normalise)

    def energy(mask: torch.Tensor) -> float:
        return float(loss(torch.cat([~mask, mask], 1).to(torch.float64), image))

    assert (energy(with_shell) < energy(core)) == shell_joins


def test_variance_mask_restricts_every_sum_by_hand():
    # Voxels 1-4 as in test_variance_normalised_by_voxels_by_hand, plus a far voxel at 9 called class 1, outside the
    # mask: it moves neither class 1's mean (2) nor its squared deviations (1 + 1); D stays V = 5.
    image = torch.tensor([0.0, 1.0, 3.0, 5.0, 9.0], dtype=torch.float64).view(1, 1, 1, 1, 5)
    probs = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 1, 0, 1]], dtype=torch.float64).view(1, 2, 1, 1, 5)
    mask = torch.tensor([True, True, True, True, False]).view(1, 1, 1, 1, 5)
    loss = VarianceMinimizationLoss(normalise="voxels")
    assert float(loss(probs, image, mask)) == pytest.approx(2.0 / 5, rel=1e-5)
    # Without the mask the far voxel counts: class 1 holds 1, 3, 9 (mean 13/3).
    assert float(loss(probs, image)) == pytest.approx(sum((v - 13 / 3) ** 2 for v in (1, 3, 9)) / 5, rel=1e-5)
    assert float(loss(probs, image, torch.ones_like(mask))) == pytest.approx(float(loss(probs, image)))
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        loss(probs, image, mask.float())
    with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
        loss(probs, image, mask[..., :4])


def test_variance_mask_keeps_a_far_dark_region_out_of_the_object():
    """A dark object in a box (the mask) and, outside the box, a second dark region: unmasked, labelling the far
    region as object lowers the energy (a false positive far from the object); masked, it changes nothing."""
    image = torch.ones(1, 1, 12, 12, 12, dtype=torch.float64)
    image[..., 2:5, 2:5, 2:5] = 0.0  # the object
    image[..., 8:11, 8:11, 8:11] = 0.0  # far dark voxels (e.g. sulcal CSF)
    image[..., 0, 0, 0] = -1.0
    box = torch.zeros_like(image, dtype=torch.bool)
    box[..., :7, :7, :7] = True
    obj = (image == 0.0) & box
    both = image == 0.0
    loss = VarianceMinimizationLoss(normalise="voxels")

    def energy(mask: torch.Tensor, region: torch.Tensor | None) -> float:
        return float(loss(torch.cat([~mask, mask], 1).to(torch.float64), image, region))

    assert energy(both, None) < energy(obj, None)
    assert energy(both, box) == pytest.approx(energy(obj, box))


def test_variance_gradcheck():
    probs, image = random_inputs(2, 3, 2, (3, 2, 4), image_scale=1.0)
    assert torch.autograd.gradcheck(lambda p: VarianceMinimizationLoss()(p, image), (probs,))


def test_variance_empty_class_is_finite():
    probs = torch.zeros(1, 2, 3, 3, 3)
    probs[:, 0] = 1
    value = VarianceMinimizationLoss()(probs, torch.randn(1, 1, 3, 3, 3))
    assert torch.isfinite(value)


@pytest.mark.parametrize("loss", [MultiViewGatedCRFLoss(radius=1), VarianceMinimizationLoss()],
                         ids=["crf", "vm"])
@pytest.mark.parametrize("probs, image, error, match", [
    (torch.rand(1, 2, 4, 4), torch.rand(1, 1, 4, 4), ValueError, "probs must have shape"),
    (torch.rand(1, 2, 4, 4, 4), torch.rand(1, 4, 4, 4), ValueError, "image must have shape"),
    (torch.rand(1, 2, 4, 4, 4), torch.rand(1, 1, 4, 4, 5), ValueError, "spatial shape"),
    (torch.rand(1, 2, 4, 4, 4), torch.rand(2, 1, 4, 4, 4), ValueError, "batch size"),
    (torch.randn(1, 2, 4, 4, 4) * 5, torch.rand(1, 1, 4, 4, 4), ValueError, "softmax probabilities"),
    (torch.ones(1, 2, 4, 4, 4, dtype=torch.long), torch.rand(1, 1, 4, 4, 4), TypeError, "floating point"),
    (torch.rand(1, 2, 0, 4, 4), torch.rand(1, 1, 0, 4, 4), ValueError, "empty"),
])
def test_input_checks(loss, probs, image, error, match):
    with pytest.raises(error, match=match):
        loss(probs, image)


@pytest.mark.parametrize("kwargs, match", [
    ({"radius": 0}, "radius"), ({"radius": 2.5}, "radius"), ({"sigma_xy": 0}, "sigma_xy"),
    ({"sigma_intensity": -1}, "sigma_intensity"), ({"spacing": (1, 1)}, "spacing"), ({"spacing": (1, 0, 1)}, "spacing"),
])
def test_crf_parameter_checks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiViewGatedCRFLoss(**kwargs)


@pytest.mark.parametrize("module", ["crf", "variance", "distillation", "regularised"])
def test_docstring_examples_run(module):
    import importlib

    result = doctest.testmod(importlib.import_module(f"nnunetv2_paseg.losses.{module}"))
    assert result.attempted > 0 and result.failed == 0
