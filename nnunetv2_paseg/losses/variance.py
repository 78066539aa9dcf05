"""The variance minimisation (VM) loss of PA-Seg (Zhai et al., IEEE TMI 2023, arXiv 2208.05669):
probability-weighted intensity variance per class."""
from __future__ import annotations

import math

import torch
from torch import nn

from nnunetv2_paseg.losses.crf import check_probs_and_image


class VarianceMinimizationLoss(nn.Module):
    """Variance minimisation (VM) loss of PA-Seg's stage 1: the probability-weighted intensity variance of every
    class, background included, which pulls each unlabelled voxel towards a class of similar intensity.

    For sample n, image channel k and class c, with weights :math:`w_{ic} = p_{ic}` (and
    :math:`w_{i0} = p_{i0}\\,[x_{ik} > \\min_i x_{ik}]` for the background class c = 0) and the class's mass
    :math:`m_{nkc} = \\sum_i w_{ic} + \\epsilon`:

    .. math::
        \\mu_{nkc} = \\frac{\\sum_i w_{ic} x_{ik}}{m_{nkc}}, \\qquad
        \\sigma^2_{nkc} = \\frac{\\sum_i w_{ic} (x_{ik} - \\mu_{nkc})^2}{D}, \\qquad
        L_{VM} = \\frac{1}{N K} \\sum_{n, k} \\sum_c \\sigma^2_{nkc},

    sums over the voxels i of sample n. ``normalise="class"`` (the reference): D = m_{nkc}, each class's variance.
    ``normalise="voxels"``: D = the sample's voxel count V, the squared deviations summed over all voxels
    (Mumford-Shah's piecewise-constant energy / V). They place the boundary between two classes differently: with
    D = V a voxel joins the class whose mean is nearer (the midpoint of the two means); with D = m_c a small class
    takes only voxels within about one of its own standard deviations, which moves a small dark object's surface
    to its darkest voxels (measured: ``benchmarks/regulariser_boundary.py``).

    The background mask drops the voxels at the sample's minimum intensity in that channel (the zero-intensity
    surround after z-scoring), separately for each channel. The image is a fixed guide: no gradient flows into it.
    Computed in float32 (float64 if an input is float64), also under autocast.

    Args:
        eps: added to each class's probability mass, so that a class with no mass gives variance 0. > 0.
        normalise: "class" (default, the reference) or "voxels", the D above.

    Shapes:
        probs: (N, C, X, Y, Z) softmax probabilities in [0, 1], class 0 = background.
        image: (N, K, X, Y, Z) the image the probabilities were predicted from (any K >= 1).
        output: scalar >= 0.

    Example:
        >>> import torch
        >>> probs = torch.softmax(torch.randn(2, 3, 8, 8, 6), 1)
        >>> value = VarianceMinimizationLoss(normalise="voxels")(probs, torch.randn(2, 1, 8, 8, 6))
        >>> bool(value >= 0)
        True
    """

    def __init__(self, eps: float = 1e-6, normalise: str = "class") -> None:
        super().__init__()
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
            raise ValueError(f"VarianceMinimizationLoss: eps must be a positive number, got {eps!r}")
        if normalise not in ("class", "voxels"):
            raise ValueError(f"VarianceMinimizationLoss: normalise must be 'class' or 'voxels', got {normalise!r}")
        self.eps = float(eps)
        self.normalise = normalise

    def extra_repr(self) -> str:
        return f"eps={self.eps}, normalise={self.normalise!r}"

    def forward(self, probs: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        check_probs_and_image(probs, image, type(self).__name__)
        dtype = torch.float64 if torch.float64 in (probs.dtype, image.dtype) else torch.float32
        with torch.autocast(device_type=probs.device.type, enabled=False):
            p = probs.to(dtype).flatten(2).unsqueeze(1)  # (N, 1, C, V)
            x = image.detach().to(dtype).flatten(2).unsqueeze(2)  # (N, K, 1, V)
            not_minimum = x > x.amin(dim=3, keepdim=True)
            weights = torch.cat([p[:, :, :1] * not_minimum, p[:, :, 1:].expand(-1, x.shape[1], -1, -1)], dim=2)
            mass = weights.sum(3, keepdim=True) + self.eps
            mean = (weights * x).sum(3, keepdim=True) / mass
            divisor = mass if self.normalise == "class" else x.shape[3]
            variance = (weights * (x - mean).square()).sum(3, keepdim=True) / divisor
            return variance.sum(2).mean()
