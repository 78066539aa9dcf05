"""Per-epoch logging of the PA-Seg trainers' loss parts: nnU-Net's logger with extra curves, averaged over DDP ranks,
drawn beside nnU-Net's progress.png."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import distributed as dist

from nnunetv2.training.logging.nnunet_logger import LocalLogger


def mean_over_ranks(values: dict[str, np.ndarray]) -> dict[str, float]:
    """Mean of each entry over this process's training steps and, under DDP, over every rank's steps.

    Each DDP rank computes its losses on its own batches; like nnU-Net's ``train_losses``, the logged value is the
    mean over all ranks (``all_gather_object``; every rank must call this).
    """
    if dist.is_available() and dist.is_initialized():
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, values)
        values = {key: np.vstack([np.atleast_1d(g[key]) for g in gathered]) for key in values}
    return {key: float(np.mean(v)) for key, v in values.items()}


class LossComponentsLogger(LocalLogger):
    """``LocalLogger`` that also keeps ``loss_keys`` and ``weight_keys`` (one value per epoch each).

    Beside nnU-Net's progress.png (drawn by nnU-Net), ``loss_components.png`` shows the ``loss_keys`` curves on the
    left axis and the ``weight_keys`` curves (e.g. a ramp-up weight in [0, 1]) on the right axis. The keys travel in
    the checkpoint like nnU-Net's own, so ``--c`` resumes them.
    """

    def __init__(self, loss_keys: Sequence[str], weight_keys: Sequence[str] = (), verbose: bool = False):
        super().__init__(verbose)
        self.loss_keys = tuple(loss_keys)
        self.weight_keys = tuple(weight_keys)
        clash = set(self.loss_keys + self.weight_keys) & set(self.my_fantastic_logging)
        if clash:
            raise ValueError(f"LossComponentsLogger: keys {sorted(clash)} are already used by nnU-Net's logger")
        for key in self.loss_keys + self.weight_keys:
            self.my_fantastic_logging[key] = []

    def plot_progress_png(self, output_folder: str) -> None:
        super().plot_progress_png(output_folder)
        import matplotlib
        matplotlib.use("agg")
        import matplotlib.pyplot as plt

        log = self.my_fantastic_logging
        epochs = min(len(log[key]) for key in self.loss_keys + self.weight_keys + ("train_losses",))
        x = list(range(epochs))
        fig, ax = plt.subplots(figsize=(12, 6))
        ax2 = ax.twinx()
        for key in self.loss_keys:
            ax.plot(x, log[key][:epochs], ls="-", label=key, linewidth=2)
        for key in self.weight_keys:
            ax2.plot(x, log[key][:epochs], color="k", ls="dotted", label=key, linewidth=2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss component")
        ax2.set_ylabel("weight")
        ax.legend(loc="upper left")
        ax2.legend(loc="upper right")
        fig.tight_layout()
        fig.savefig(f"{output_folder}/loss_components.png")
        plt.close(fig)
