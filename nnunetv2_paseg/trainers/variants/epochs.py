"""Epoch schedules as variants: nnU-Net sets ``num_epochs`` in its ``__init__``, so a class attribute cannot."""
from __future__ import annotations

import torch


class Epochs:
    """Mixin (before the trainer in the bases): ``epochs`` epochs instead of nnU-Net's 1000."""

    epochs: int

    # nnU-Net records a trainer's init arguments by the names of this signature: keep it nnU-Net's.
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.num_epochs = self.epochs
