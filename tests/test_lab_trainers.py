"""The lab's trainers (benchmarks/trainers/lab_trainers.py, found through nnUNet_extTrainer): the screening variants
keep the settings their recorded runs were trained with, and the fixed-budget trainers work with nnU-Net's own
commands (train, --val, export)."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from benchmarks.harness import LAB_TRAINERS
from tests.conftest import PIPELINE_DATASET, PIPELINE_DATASET_ID, TEST_TRAINERS_DIR, run_cli, started_trainer


@pytest.fixture
def lab_env(pipeline_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("nnUNet_extTrainer", os.pathsep.join([str(LAB_TRAINERS), str(TEST_TRAINERS_DIR)]))
    return pipeline_env


@pytest.mark.usefixtures("lab_env")
def test_clean_guide_travels_as_the_last_channel_of_the_training_batch():
    trainer = started_trainer("nnUNetTrainerPASeg_cleanGuide")
    batch = next(trainer.dataloader_train)
    assert batch["data"].shape[1] == trainer.num_input_channels + 1
    data, guide = trainer.split_batch(batch["data"])
    assert data.shape[1] == trainer.num_input_channels and guide.shape[1] == 1
    trainer.train_step(batch)  # nnU-Net's train_step: the network's hook strips the guide channel
    assert set(trainer.loss.parts[-1]) == {"partial", "crf", "vm"}
    with pytest.raises(ValueError, match=r"1 channels, expected 2 \(1 network inputs \+ the guide\)"):
        trainer.split_batch(data)


@pytest.mark.usefixtures("lab_env")
def test_full_res_weights_scale_the_regularisers_by_the_full_resolution_output_weight():
    trainer = started_trainer("nnUNetTrainerPASeg_fullResWeights")
    for epoch in range(3):
        trainer.logger.log("mean_fg_dice", 0.9, epoch)
    trainer.current_epoch = 3
    trainer.on_train_epoch_start()
    scale = trainer.loss.partial.weight_factors[0]
    assert 0 < scale < 1 and trainer.ramp_weight(3) > 0
    assert trainer.loss.weight == pytest.approx(trainer.ramp_weight(3) * scale)


@pytest.mark.usefixtures("lab_env")
def test_voxel_crf_is_the_first_release_and_mm_crf_the_default():
    voxel = started_trainer("nnUNetTrainerPASeg_voxelCRF")
    assert voxel.crf_scales() == (1.0, 0.5, 0.5)
    crf = voxel.build_crf_loss()
    assert crf.sigma_xy == 6.0 and crf.spacing is None
    mm, default = started_trainer("nnUNetTrainerPASeg_mmCRF"), started_trainer("nnUNetTrainerPASeg")
    assert mm.crf_scales() == default.crf_scales() and repr(mm.build_crf_loss()) == repr(default.build_crf_loss())


def test_budget_trainer_trains_validates_with_val_and_exports(lab_env: dict[str, Path], tmp_path: Path):
    env = {"PASEG_BUDGET_EPOCHS": "1", "PASEG_BUDGET_ITERATIONS": "2"}
    trainer = "nnUNetTrainerPASeg_budget"
    fold_dir = lab_env["nnUNet_results"] / PIPELINE_DATASET / f"{trainer}__nnUNetPlans__3d_small" / "fold_0"
    run_cli("nnUNetv2_train", PIPELINE_DATASET_ID, "3d_small", "0", "-tr", trainer, "-device", "cpu", env=env)
    assert (fold_dir / "checkpoint_final.pth").is_file()
    assert not (fold_dir / "validation" / "summary.json").exists()  # skipped right after training
    run_cli("nnUNetv2_train", PIPELINE_DATASET_ID, "3d_small", "0", "-tr", trainer, "-device", "cpu", "--val",
            "--disable_checkpointing", env=env)
    summary = json.loads((fold_dir / "validation" / "summary.json").read_text())
    assert "foreground_mean" in summary
    zip_file = tmp_path / "model.zip"
    run_cli("nnUNetv2_export_model_to_zip", "-d", PIPELINE_DATASET_ID, "-o", zip_file, "-c", "3d_small", "-tr",
            trainer, "-f", "0", env=env)
    names = zipfile.ZipFile(zip_file).namelist()
    assert any(name.endswith("fold_0/checkpoint_final.pth") for name in names)


def test_every_variant_of_the_lab_is_a_screening_trainer_that_the_benchmark_finds():
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    from benchmarks.trainers import lab_trainers

    defined = {name for name, cls in vars(lab_trainers).items() if isinstance(cls, type)
               and issubclass(cls, nnUNetTrainer) and cls.__module__ == lab_trainers.__name__
               and not name.endswith("_budget")}
    assert defined == {cls.__name__ for cls in lab_trainers.SCREENING}
    assert all(lab_trainers.lab_trainer(name) is not None for name in defined)


@pytest.mark.usefixtures("lab_env")
def test_pce_aux_is_the_residual_auxiliary_on_the_partial_loss_and_scm_pce_aux_starts_from_it():
    from benchmarks.accuracy import variant_method

    pce_aux, aux = started_trainer("nnUNetTrainerPASegAux_pCE"), started_trainer("nnUNetTrainerPASegAux")
    assert type(pce_aux.network) is type(aux.network)
    assert pce_aux.loss.regularisers == [] and [term.name for term in aux.loss.regularisers] == ["crf", "vm"]
    assert variant_method("nnUNetTrainerSCM_pceAux").needs == ("nnUNetTrainerPASeg", "nnUNetTrainerPASegAux_pCE")


@pytest.mark.usefixtures("lab_env")
def test_scm_ensemble_target_gives_both_networks_the_snapshots_mean_label():
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from benchmarks.accuracy import variant_method

    trainer = get_trainer_from_args(str(PIPELINE_DATASET_ID), "3d_small", 0, "nnUNetTrainerSCM_pceAuxEnsembleTarget",
                                    device=torch.device("cpu"))
    torch.manual_seed(0)
    primary, aux = torch.randn(1, 2, 4, 4, 4), torch.randn(1, 2, 4, 4, 4) * 3
    ignore = trainer.label_manager.ignore_label
    target = torch.full((1, 1, 4, 4, 4), ignore, dtype=torch.int16)
    target[0, 0, 0] = 0  # a slice labelled by the clicks keeps its label
    targets_a, targets_b = trainer.self_training_targets(primary, aux, target)
    expected = ((primary.softmax(1) + aux.softmax(1)) / 2).argmax(1, keepdim=True).to(torch.int16)
    expected[0, 0, 0] = 0
    assert torch.equal(targets_a, expected) and torch.equal(targets_b, expected)
    own_a, own_b = get_trainer_from_args(str(PIPELINE_DATASET_ID), "3d_small", 0, "nnUNetTrainerSCM_pceAux",
                                         device=torch.device("cpu")).self_training_targets(primary, aux, target)
    assert not torch.equal(own_a, own_b)  # crossKD's: each network its own snapshot's label
    assert variant_method("nnUNetTrainerSCM_pceAuxEnsembleTarget").needs == ("nnUNetTrainerPASeg",
                                                                             "nnUNetTrainerPASegAux_pCE")


def test_scm_frozen_teacher_keeps_the_stage1_networks_as_snapshots(lab_env: dict[str, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch):
    import torch
    from nnunetv2.run.run_training import get_trainer_from_args

    from nnunetv2_paseg.trainers.scm import AUX_WEIGHTS_ENV, PRIMARY_WEIGHTS_ENV, is_refresh_epoch, unwrap

    torch.manual_seed(0)
    trainer = get_trainer_from_args(str(PIPELINE_DATASET_ID), "3d_small", 0, "nnUNetTrainerSCM_pceAuxFrozenEnsemble",
                                    device=torch.device("cpu"))
    trainer.initialize()
    for env_var, network, name in ((PRIMARY_WEIGHTS_ENV, trainer.network, "primary"),
                                   (AUX_WEIGHTS_ENV, trainer.aux_network, "aux")):
        torch.save({"network_weights": unwrap(network).state_dict()}, tmp_path / f"{name}.pth")
        monkeypatch.setenv(env_var, str(tmp_path / f"{name}.pth"))

    def weights(module):
        return torch.cat([p.detach().flatten().clone() for p in unwrap(module).parameters()])

    trainer.on_train_start()
    stage1 = [weights(m) for m in (trainer.network, trainer.snapshot_primary, trainer.snapshot_aux)]
    refresh = next(e for e in range(1, trainer.num_epochs) if is_refresh_epoch(e, trainer.num_epochs,
                                                                               trainer.snapshot_fraction))
    for epoch in (0, refresh):  # a refreshing teacher would copy the trained weights at the second
        trainer.current_epoch = epoch
        trainer.on_train_epoch_start()
        trainer.train_step(next(trainer.dataloader_train))
    assert not torch.equal(weights(trainer.network), stage1[0])
    assert torch.equal(weights(trainer.snapshot_primary), stage1[1])
    assert torch.equal(weights(trainer.snapshot_aux), stage1[2])


@pytest.mark.usefixtures("lab_env")
def test_ramp_when_found_starts_once_every_class_has_a_pseudo_dice_above_zero():
    trainer = started_trainer("nnUNetTrainerPASeg_rampWhenFound")
    per_class = [[0.0, 0.0], [0.6, 0.0], [0.9, float("nan")], [0.9, 0.01], [0.0, 0.0]]
    for epoch, dice in enumerate(per_class):
        trainer.logger.log("dice_per_class_or_region", dice, epoch)
        trainer.logger.log("mean_fg_dice", 0.3, epoch)  # the default's gate (0.5) never opens here
    assert [trainer.ramp_weight(epoch) for epoch in range(4)] == [0.0] * 4
    assert trainer.ramp_weight(4) > 0 and trainer.ramp_weight(5) > trainer.ramp_weight(4)  # from epoch 4, on
    default = started_trainer("nnUNetTrainerPASeg")
    for epoch, dice in enumerate(per_class):
        default.logger.log("dice_per_class_or_region", dice, epoch)
        default.logger.log("mean_fg_dice", 0.3, epoch)
    assert default.ramp_weight(5) == 0.0
