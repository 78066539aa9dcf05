"""PA-Seg's stage-1 training loss: nnU-Net's partial loss plus the ramped regularisers on the guide image."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Regulariser:
    """One regularisation term: ``weight * loss(probs, guide)``, logged under ``name``.

    ``loss`` takes the softmax of the full-resolution output (N, C, X, Y, Z) and the guide image (N, 1, X, Y, Z) and
    returns a scalar; with ``needs_labels`` also, third, the full-resolution target (N, 1, X, Y, Z): nnU-Net's
    labels with its ``ignore`` value, e.g. to restrict the term to the voxels they leave unlabelled.
    """

    name: str
    weight: float
    loss: Callable[..., torch.Tensor]
    needs_labels: bool = False


class RegularisedLoss(nn.Module):
    """The stage-1 loss of PA-Seg (Zhai et al., IEEE TMI 2023, arXiv 2208.05669), as nnU-Net's trainers call a loss:
    ``loss(output, target)``.

    .. math::
        L = L_{partial}(z, y) + \\rho \\sum_r w_r L_r(\\mathrm{softmax}(z_0), g)

    with z the network output (a list, full resolution first, under deep supervision), y nnU-Net's target,
    ``partial`` nnU-Net's own loss (Dice + CE that skips the ``ignore`` voxels, on every deep-supervision output),
    z_0 the full-resolution logits, g the guide image of the batch and rho = ``weight`` (the trainer's ramp-up).

    The guide is handed over per training step through ``guide`` (the trainer sets it from the network's input) and
    used once: a call without a guide (nnU-Net's validation step) is the partial loss alone. While ``weight`` is 0
    the regularisers are computed without a graph, for the log only. Each training call appends its parts
    ({"partial": ..., name: ...}, detached scalars) to ``parts``, which the trainer reads and clears per epoch.

    Args:
        partial: nnU-Net's loss (e.g. ``DeepSupervisionWrapper(DC_and_CE_loss)``).
        regularisers: the terms, in the order they are logged; none makes this the partial loss.

    Shapes:
        output: (N, C, X, Y, Z) logits, or a list of them (full resolution first); target: as ``partial`` expects;
        guide: (N, 1, X, Y, Z).

    Example:
        >>> import torch
        >>> from nnunetv2_paseg.losses import MultiViewGatedCRFLoss, VarianceMinimizationLoss
        >>> ce = lambda z, y: torch.nn.functional.cross_entropy(z, y[:, 0].long())
        >>> loss = RegularisedLoss(ce, [Regulariser("crf", 1.0, MultiViewGatedCRFLoss(radius=2)),
        ...                             Regulariser("vm", 0.1, VarianceMinimizationLoss())])
        >>> logits, target = torch.randn(1, 2, 8, 8, 8), torch.randint(0, 2, (1, 1, 8, 8, 8))
        >>> loss.weight, loss.guide = 1.0, torch.randn(1, 1, 8, 8, 8)
        >>> value = loss(logits, target)
        >>> sorted(loss.parts[0])
        ['crf', 'partial', 'vm']
    """

    def __init__(self, partial: Callable, regularisers: list[Regulariser]) -> None:
        super().__init__()
        self.partial = partial
        self.regularisers = list(regularisers)
        for term in self.regularisers:
            if isinstance(term.loss, nn.Module):
                self.add_module(f"regulariser_{term.name}", term.loss)
        self.weight = 0.0
        self.guide: torch.Tensor | None = None
        self.parts: list[dict[str, torch.Tensor]] = []

    def forward(self, output: torch.Tensor | list[torch.Tensor], target) -> torch.Tensor:
        partial = self.partial(output, target)
        guide, self.guide = self.guide, None
        if guide is None:
            return partial
        total = partial
        parts = {"partial": partial.detach()}
        if self.regularisers:
            # Before the ramp starts the terms are only logged: no graph, no backward pass through them.
            with torch.set_grad_enabled(torch.is_grad_enabled() and self.weight != 0.0):
                logits = output[0] if isinstance(output, (list, tuple)) else output
                probs = torch.softmax(logits.float(), 1)
                labels = target[0] if isinstance(target, (list, tuple)) else target
                values = {term.name: (term.weight, term.loss(probs, guide, labels) if term.needs_labels
                                      else term.loss(probs, guide)) for term in self.regularisers}
            for name, (weight, value) in values.items():
                total = total + self.weight * weight * value
                parts[name] = value.detach()
        self.parts.append(parts)
        return total
