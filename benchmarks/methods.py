"""The accuracy benchmark's methods: which trainer each one trains, from which labels, after which trainers. Shared by
``accuracy.py`` (what to train) and ``budget_curve.py`` (which runs form one series)."""
from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path


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
    "aux": Method("nnUNetTrainerPASegAux_pCE", "nnUNetTrainerPASegAux_pCE (clicks), SCM's auxiliary", "clicks"),
    "scm": Method("nnUNetTrainerSCM", "nnUNetTrainerSCM (clicks)", "clicks",
                  ("nnUNetTrainerPASeg", "nnUNetTrainerPASegAux_pCE")),
}
# Trained on the full labels: the clicks' pseudo-labels of the datasets beside them do not enter these runs.
FULL_LABEL_TRAINERS = frozenset(m.trainer for m in MAIN_METHODS.values() if m.kind == "full")
# The paper's stage 2 and its auxiliary stage 1, reported beside the main methods where they ran (``--variants``,
# which takes an SCM variant's stage-1 trainers from its class).
PAPER_METHODS = {
    "aux_paper": Method("nnUNetTrainerPASegAux", "nnUNetTrainerPASegAux (clicks), the paper's auxiliary", "clicks"),
    "scm_paper": Method("nnUNetTrainerSCM_crossKD", "nnUNetTrainerSCM_crossKD (clicks), the paper's stage 2", "clicks"),
}

REPO = Path(__file__).resolve().parents[1]
# A trainer whose defaults changed: (the commit that changed them, the name its earlier configuration has now).
# Records keep the name they were trained under (runs.jsonl is never rewritten); the reports file a run of an earlier
# commit under the configuration it trained.
DEFAULTS_CHANGED = {"nnUNetTrainerSCM": ("3ce9f09", "nnUNetTrainerSCM_crossKD")}


def _known(commit: str) -> bool:
    return subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{commit}^{{commit}}"],
                          capture_output=True).returncode == 0


@functools.cache
def _predates(commit: str, change: str) -> bool:
    """Whether a record's ``commit`` (possibly ``+changes``) was trained before ``change``: ``unknown`` (runs recorded
    before commits were stored) or a commit of this repository that does not contain it. A commit git does not know
    is taken as it is named, and so is every record where git does not know ``change`` (a shallow clone)."""
    if not _known(change):
        return False
    if commit == "unknown":
        return True
    commit = commit.split("+")[0]
    if not _known(commit):
        return False
    return subprocess.run(["git", "-C", str(REPO), "merge-base", "--is-ancestor", change, commit],
                          capture_output=True).returncode != 0


def trained_as(record: dict) -> str:
    """The trainer name of the configuration a recorded run trained (``DEFAULTS_CHANGED``)."""
    trainer = record["trainer"]
    if trainer in DEFAULTS_CHANGED:
        change, earlier = DEFAULTS_CHANGED[trainer]
        if _predates(record.get("commit", "unknown"), change):
            return earlier
    return trainer
