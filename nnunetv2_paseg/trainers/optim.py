"""The optimiser step of nnU-Net's ``train_step``, for the two networks that nnUNetTrainerSCM trains in one step."""
from __future__ import annotations

import torch
from torch import nn


def optimizer_step(loss: torch.Tensor, network: nn.Module, optimizer: torch.optim.Optimizer, grad_scaler) -> None:
    """Backward pass of ``loss`` and one step of ``optimizer`` on ``network``, as nnUNetTrainer.train_step does it:
    gradients clipped to norm 12, through the AMP ``grad_scaler`` when there is one (CUDA), else in full precision.
    Gradients must have been zeroed before the forward pass."""
    if grad_scaler is not None:
        grad_scaler.scale(loss).backward()
        grad_scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(network.parameters(), 12)
        grad_scaler.step(optimizer)
        grad_scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), 12)
        optimizer.step()
