"""nnU-Net's per-epoch logger with extra per-epoch curves, drawn as a fourth panel of progress.png."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402
from nnunetv2.training.logging.nnunet_logger import LocalLogger  # noqa: E402


class LossComponentsLogger(LocalLogger):
    """``LocalLogger`` that also keeps ``loss_keys`` and ``weight_keys`` (one value per epoch each).

    progress.png gets nnU-Net's three panels (losses and pseudo Dice, epoch time, learning rate) and a fourth one
    with the ``loss_keys`` curves on the left axis and the ``weight_keys`` curves (e.g. a ramp-up weight in [0, 1])
    on the right axis. The keys travel in the checkpoint like nnU-Net's own, so ``--c`` resumes them.
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
        log = self.my_fantastic_logging
        epoch = min(len(values) for values in log.values()) - 1
        x = list(range(epoch + 1))
        sns.set(font_scale=2.5)
        fig, axes = plt.subplots(4, 1, figsize=(30, 72))

        ax, ax2 = axes[0], axes[0].twinx()
        ax.plot(x, log["train_losses"][:epoch + 1], color="b", ls="-", label="loss_tr", linewidth=4)
        ax.plot(x, log["val_losses"][:epoch + 1], color="r", ls="-", label="loss_val", linewidth=4)
        ax2.plot(x, log["mean_fg_dice"][:epoch + 1], color="g", ls="dotted", label="pseudo dice", linewidth=3)
        ax2.plot(x, log["ema_fg_dice"][:epoch + 1], color="g", ls="-", label="pseudo dice (mov. avg.)", linewidth=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax2.set_ylabel("pseudo dice")
        ax.legend(loc=(0, 1))
        ax2.legend(loc=(0.2, 1))

        ax = axes[1]
        durations = [end - start for end, start in zip(log["epoch_end_timestamps"], log["epoch_start_timestamps"])]
        ax.plot(x, durations[:epoch + 1], color="b", ls="-", label="epoch duration", linewidth=4)
        ax.set(ylim=[0, ax.get_ylim()[1]])
        ax.set_xlabel("epoch")
        ax.set_ylabel("time [s]")
        ax.legend(loc=(0, 1))

        ax = axes[2]
        ax.plot(x, log["lrs"][:epoch + 1], color="b", ls="-", label="learning rate", linewidth=4)
        ax.set_xlabel("epoch")
        ax.set_ylabel("learning rate")
        ax.legend(loc=(0, 1))

        ax, ax2 = axes[3], axes[3].twinx()
        for key in self.loss_keys:
            ax.plot(x, log[key][:epoch + 1], ls="-", label=key, linewidth=4)
        for key in self.weight_keys:
            ax2.plot(x, log[key][:epoch + 1], color="k", ls="dotted", label=key, linewidth=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss component")
        ax2.set_ylabel("weight")
        ax.legend(loc=(0, 1))
        ax2.legend(loc=(0.6, 1))

        plt.tight_layout()
        fig.savefig(f"{output_folder}/progress.png")
        plt.close(fig)
