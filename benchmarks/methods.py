"""The accuracy benchmark's methods: which trainer each one trains, from which labels, after which trainers. Shared by
``accuracy.py`` (what to train) and ``budget_curve.py`` (which runs form one series)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    """A trainer of the benchmark: ``trainer`` (its ``_budget`` version is trained), the labels it learns from
    (``kind``: "full" or "clicks") and the trainers whose models it starts from."""

    trainer: str
    label: str
    kind: str
    needs: tuple[str, ...] = ()


MAIN_METHODS = {
    "full": Method("nnUNetTrainer", "nnUNetTrainer (full labels)", "full"),
    "pce": Method("nnUNetTrainerPASeg_pCE", "nnUNetTrainerPASeg_pCE (clicks)", "clicks"),
    "paseg": Method("nnUNetTrainerPASeg", "nnUNetTrainerPASeg (clicks)", "clicks"),
    "aux": Method("nnUNetTrainerPASegAux_pCE", "nnUNetTrainerPASegAux_pCE (clicks)", "clicks"),
    "scm": Method("nnUNetTrainerSCM", "nnUNetTrainerSCM (clicks)", "clicks",
                  ("nnUNetTrainerPASeg", "nnUNetTrainerPASegAux_pCE")),
}
# Trained on the full labels: the clicks' pseudo-labels of the datasets beside them do not enter these runs.
FULL_LABEL_TRAINERS = frozenset(m.trainer for m in MAIN_METHODS.values() if m.kind == "full")
