"""Reading and writing the PA-Seg trainers' checkpoints, with errors that name the file and say what does not match.

nnU-Net's own loading reports a truncated file as torch's "PytorchStreamReader failed reading zip archive" and
weights of another network as pages of state-dict keys, neither naming the file nor saying where it came from.
Here every problem is a ``CheckpointError`` naming the file: unreadable (cut short, e.g. by a run killed while
saving, or not a checkpoint), or weights that do not fit the network, with the shapes that differ and the
trainer, dataset, plans, configuration and labels the file was trained with beside this run's.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn
from torch._dynamo import OptimizedModule
from torch.nn.parallel import DistributedDataParallel as DDP


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def read_checkpoint(path: str | os.PathLike, map_location: torch.device | str, what: str = "checkpoint") -> dict:
    """The nnU-Net checkpoint dict in ``path`` (``what`` names its role in messages); CheckpointError if the file is
    missing, unreadable or not an nnU-Net checkpoint."""
    if not Path(path).is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    try:
        # Not mmap: the optimiser adopts loaded tensors as its state without copying, and the file is overwritten by
        # the next checkpoint of the same name.
        checkpoint = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for damaged files
        reason = textwrap.shorten(str(e), 300, placeholder=" ...")
        raise CheckpointError(f"could not read {what} {path} ({Path(path).stat().st_size} bytes): "
                              f"{type(e).__name__}: {reason}. It is cut short (a run killed while saving it?) or not a "
                              "PyTorch checkpoint") from None
    if not isinstance(checkpoint, dict) or "network_weights" not in checkpoint:
        raise CheckpointError(f"{what} {path} is not an nnU-Net checkpoint (no 'network_weights')")
    return checkpoint


def describe_run(init_args: Mapping | None) -> str:
    """"dataset D, plans P, configuration C, labels [...]" from a trainer's init arguments (a checkpoint's
    ``init_args``, or ``trainer.my_init_kwargs``)."""
    if not isinstance(init_args, Mapping):
        return "unknown (no init_args)"
    plans = init_args.get("plans") or {}
    labels = (init_args.get("dataset_json") or {}).get("labels") or {}
    return (f"dataset {plans.get('dataset_name', '?')}, plans {plans.get('plans_name', '?')}, configuration "
            f"{init_args.get('configuration', '?')}, labels {list(labels)}")


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def fitting_weights(checkpoint: dict, network: nn.Module, what: str, this_run: Mapping | None = None,
                    key: str = "network_weights", role: str = "network") -> dict[str, torch.Tensor]:
    """``checkpoint[key]`` with its keys named as ``network`` names them (checkpoints written from a DDP-wrapped
    network by older code carry a 'module.' prefix); CheckpointError, naming ``what`` (the file), ``role`` (which
    network of the run) and the run each side comes from (``this_run``: this trainer's init arguments), if they do
    not fit."""
    expected = network.state_dict()
    weights = {k[7:] if k.startswith("module.") and k not in expected else k: v for k, v in checkpoint[key].items()}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(weights) if _shape(expected[k]) != _shape(weights[k]))
    if not (missing or unexpected or wrong_shape):
        return weights
    def some(items: list[str]) -> str:
        return ", ".join(items[:3]) + (f" and {len(items) - 3} more" if len(items) > 3 else "")

    details = [f"{len(keys)} {name}: {some(keys)}" for name, keys in (("missing", missing), ("unexpected", unexpected))
               if keys]
    if wrong_shape:
        details.append(f"{len(wrong_shape)} with the wrong shape: " + some(
            [f"{k} {_shape(weights[k])} in the file, {_shape(expected[k])} here" for k in wrong_shape]))
    raise CheckpointError(f"{what} (trainer {checkpoint.get('trainer_name', '?')}) does not fit the {role} "
                          f"({type(network).__name__}) of this run: {'; '.join(details)}. The file was trained with "
                          f"{describe_run(checkpoint.get('init_args'))}; this run uses {describe_run(this_run)}")


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside DDP and/or torch.compile wrappers (whose state_dict has nnU-Net's key names)."""
    if isinstance(module, DDP):
        module = module.module
    if isinstance(module, OptimizedModule):
        module = module._orig_mod
    return module


def checked_checkpoint(trainer, filename_or_checkpoint: dict | str) -> dict:
    """The checkpoint that ``nnUNetv2_train --c`` (or a caller) asks ``trainer`` to continue from, read and checked
    against its network (CheckpointError naming the file). Initialises the trainer first, as
    ``nnUNetTrainer.load_checkpoint`` does."""
    if not trainer.was_initialized:
        trainer.initialize()
    if isinstance(filename_or_checkpoint, dict):
        checkpoint, what = filename_or_checkpoint, "the checkpoint"
    else:
        what = f"checkpoint {filename_or_checkpoint}"
        checkpoint = read_checkpoint(filename_or_checkpoint, trainer.device)
    fitting_weights(checkpoint, unwrap(trainer.network), what, trainer.my_init_kwargs)
    return checkpoint


def save_atomically(save: Callable[[str], None], filename: str) -> None:
    """``save(filename)`` through a temporary name and a rename, so that a run killed while saving leaves the
    previous checkpoint of that name, not a truncated one. ``save`` may write nothing (not rank 0, checkpointing
    disabled)."""
    partial = f"{filename}.partial"
    save(partial)
    if os.path.exists(partial):
        os.replace(partial, filename)


class SafeCheckpoints:
    """Mixin for nnU-Net trainers (before nnUNetTrainer in the bases): checkpoints written through a temporary name
    (``save_atomically``), and a checkpoint to continue from (``--c``) read and checked against the network first
    (``checked_checkpoint``: a CheckpointError naming the file instead of torch's messages). ``--c`` without any
    checkpoint stays nnU-Net's: a warning, then a fresh start. A trainer with more state than nnU-Net's extends
    ``write_checkpoint``."""

    def write_checkpoint(self, filename: str) -> None:
        """Write the checkpoint file (nnU-Net's, unless a trainer adds to it)."""
        super().save_checkpoint(filename)

    def save_checkpoint(self, filename: str) -> None:
        save_atomically(self.write_checkpoint, filename)

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        checked_checkpoint(self, filename_or_checkpoint)
        # the original argument: nnU-Net's load_checkpoint (2.8) cannot take the dict it is given
        super().load_checkpoint(filename_or_checkpoint)
