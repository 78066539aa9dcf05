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
    surround after z-scoring), separately for each channel. An optional ``mask`` restricts every sum (the means
    included) to its voxels, e.g. the voxels that the partial labels leave unlabelled or call foreground (PA-Seg's
    object boxes): the classes' means are then the object's and its local surround's, and the energy says nothing
    about voxels far from the objects (where an unmasked VM labels every voxel of the object's intensity). D stays
    as above (V: the whole sample's voxel count), so a weight means the same with and without a mask. The image is a fixed guide: no gradient flows into it.
    Computed in float32 (float64 if an input is float64), also under autocast.

    Args:
        eps: added to each class's probability mass, so that a class with no mass gives variance 0. > 0.
        normalise: "class" (default, the reference) or "voxels", the D above.

    Shapes:
        probs: (N, C, X, Y, Z) softmax probabilities in [0, 1], class 0 = background.
        image: (N, K, X, Y, Z) the image the probabilities were predicted from (any K >= 1).
        mask: optional (N, 1, X, Y, Z) bool, the voxels that count (default: all).
        output: scalar >= 0.

    Example:
        >>> import torch
        >>> probs = torch.softmax(torch.randn(2, 3, 8, 8, 6), 1)
        >>> value = VarianceMinimizationLoss(normalise="voxels")(probs, torch.randn(2, 1, 8, 8, 6))
        >>> bool(value >= 0)
        True
        >>> inside = torch.zeros(2, 1, 8, 8, 6, dtype=torch.bool); inside[..., 2:6, 2:6, :] = True
        >>> bool(VarianceMinimizationLoss(normalise="voxels")(probs, torch.randn(2, 1, 8, 8, 6), inside) >= 0)
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

    def forward(self, probs: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        check_probs_and_image(probs, image, type(self).__name__)
        if mask is not None and (not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool
                                 or mask.shape != (probs.shape[0], 1, *probs.shape[2:])):
            raise ValueError(f"{type(self).__name__}: mask must be a bool tensor of shape "
                             f"{(probs.shape[0], 1, *probs.shape[2:])}, got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
        dtype = torch.float64 if torch.float64 in (probs.dtype, image.dtype) else torch.float32
        with torch.autocast(device_type=probs.device.type, enabled=False):
            p = probs.to(dtype).flatten(2).unsqueeze(1)  # (N, 1, C, V)
            x = image.detach().to(dtype).flatten(2).unsqueeze(2)  # (N, K, 1, V)
            not_minimum = x > x.amin(dim=3, keepdim=True)
            weights = torch.cat([p[:, :, :1] * not_minimum, p[:, :, 1:].expand(-1, x.shape[1], -1, -1)], dim=2)
            if mask is not None:
                weights = weights * mask.to(probs.device).flatten(2).unsqueeze(1)
            mass = weights.sum(3, keepdim=True) + self.eps
            mean = (weights * x).sum(3, keepdim=True) / mass
            divisor = mass if self.normalise == "class" else x.shape[3]
            variance = (weights * (x - mean).square()).sum(3, keepdim=True) / divisor
            return variance.sum(2).mean()
