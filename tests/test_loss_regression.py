"""Pinned training losses: the first steps of nnUNetTrainerPASeg and nnUNetTrainerSCM (its defaults and the paper's
configuration, nnUNetTrainerSCM_crossKD) on the tiny pipeline dataset,
at a fixed seed, on the CPU with one thread.

The numbers below were measured before the trainers were reorganised (regularisers moved into the loss that
``_build_loss`` makes, lab trainers moved out of the package) and must not change with such a reorganisation: a
refactor that changes them changed the method. They change legitimately only when the method's defaults change;
then say so in the commit that updates them. The pipeline dataset is converted with ``paseg_convert``'s default
pseudo-labels, so they changed when that default became ``extremes`` (more labelled foreground, same trainers).
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tests.conftest import PIPELINE_DATASET_ID

# train_step(...)["loss"] of PASeg: step 0 at epoch 0 (regularisers off), steps 1-2 at epoch 150 after 150 epochs of
# pseudo-Dice 0.9 (ramp weight 1).
PASEG_LOSSES = [0.9132543206214905, 21.48744773864746, 21.204845428466797]
# SCM from stand-in stage-1 networks (its own initial weights): train_step(...)["loss"] (network A) of two steps, and
# the sum of the auxiliary network's parameters after them. nnUNetTrainerSCM_crossKD keeps the numbers of SCM's
# defaults until 2026-12-07; today's defaults (frozen stage-1 ensemble as the target) do not train B.
SCM_CROSSKD_LOSSES = [0.6278976202011108, 0.6269950866699219]
SCM_CROSSKD_AUX_PARAMETER_SUM = 75.68798645880503
SCM_LOSSES = [0.8788424730300903, 0.8796007633209229]


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _trainer(name: str):
    from nnunetv2.run.run_training import get_trainer_from_args

    _seed(0)
    return get_trainer_from_args(str(PIPELINE_DATASET_ID), "3d_small", 0, name, device=torch.device("cpu"))


def _batches(trainer, n: int) -> list[dict]:
    _seed(1)
    return [next(trainer.dataloader_train) for _ in range(n)]


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("pipeline_env", "one_thread")
def test_paseg_losses_of_the_first_steps_are_pinned():
    trainer = _trainer("nnUNetTrainerPASeg")
    trainer.on_train_start()
    batches = _batches(trainer, 3)
    trainer.on_train_epoch_start()
    losses = [float(trainer.train_step(batches[0])["loss"])]
    for epoch in range(150):
        trainer.logger.log("mean_fg_dice", 0.9, epoch)
    trainer.current_epoch = 150
    trainer.on_train_epoch_start()
    losses += [float(trainer.train_step(batch)["loss"]) for batch in batches[1:]]
    print("PASeg losses", repr(losses))
    assert losses == pytest.approx(PASEG_LOSSES, rel=1e-4)


@pytest.mark.usefixtures("pipeline_env", "one_thread")
@pytest.mark.parametrize("name, expected_losses, expected_aux_sum", [
    ("nnUNetTrainerSCM_crossKD", SCM_CROSSKD_LOSSES, SCM_CROSSKD_AUX_PARAMETER_SUM),
    ("nnUNetTrainerSCM", SCM_LOSSES, None)])  # None: B keeps its stage-1 weights
def test_scm_losses_of_the_first_steps_are_pinned(tmp_path, monkeypatch: pytest.MonkeyPatch, name: str,
                                                 expected_losses: list[float], expected_aux_sum: float | None):
    trainer = _trainer(name)
    trainer.initialize()
    for env_var, network in (("PASEG_PRIMARY_WEIGHTS", trainer.network), ("PASEG_AUX_WEIGHTS", trainer.aux_network)):
        path = tmp_path / f"{env_var}.pth"
        torch.save({"network_weights": network.state_dict()}, path)
        monkeypatch.setenv(env_var, str(path))
    trainer.on_train_start()
    stage1_aux_sum = float(sum(p.detach().double().sum() for p in trainer.aux_network.parameters()))
    batches = _batches(trainer, 2)
    trainer.on_train_epoch_start()
    losses = [float(trainer.train_step(batch)["loss"]) for batch in batches]
    aux_sum = float(sum(p.detach().double().sum() for p in trainer.aux_network.parameters()))
    print(name, "losses", repr(losses), "aux parameter sum", repr(aux_sum))
    assert losses == pytest.approx(expected_losses, rel=1e-4)
    if expected_aux_sum is None:
        assert aux_sum == stage1_aux_sum
    else:
        assert aux_sum == pytest.approx(expected_aux_sum, rel=1e-6)
