"""nnUNetTrainerPASeg: ramp-up, loss composition and logging on a real network and batch, and the CPU pipeline
clicks -> paseg_convert -> plan/preprocess -> train (+ --c) -> export/install -> predict -> evaluate."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nnunetv2_paseg.trainers.paseg import (crf_grid_scales, mean_over_ranks, nnUNetTrainerPASeg, ramp_start_epoch,
                                           sigmoid_rampup)
from tests.conftest import PIPELINE_DATASET, PIPELINE_DATASET_ID, run_cli

DATASET_ID, DATASET = PIPELINE_DATASET_ID, PIPELINE_DATASET
TEST_TRAINER = "nnUNetTrainerPASeg_test"


def test_ramp_starts_the_epoch_after_the_pseudo_dice_first_reaches_the_threshold():
    assert ramp_start_epoch([], 0.5) is None
    assert ramp_start_epoch([0.0, 0.2, float("nan"), 0.49], 0.5) is None
    assert ramp_start_epoch([0.0, 0.2, 0.5], 0.5) == 3
    assert ramp_start_epoch([0.0, 0.7, 0.1, 0.2], 0.5) == 2  # a later dip does not stop it
    assert ramp_start_epoch([0.0, 0.0], 0.0) == 1
    assert ramp_start_epoch([], None) == 0 and ramp_start_epoch([0.9], None) == 0


def test_crf_grid_resamples_only_axes_finer_than_the_threshold():
    assert crf_grid_scales((1.5, 0.45, 0.45), 1.0) == pytest.approx((1.0, 0.45, 0.45))
    assert crf_grid_scales((2.0, 2.0, 2.0), 1.0) == (1.0, 1.0, 1.0)
    assert crf_grid_scales((1.0, 1.0, 1.0), 2.0) == (0.5, 0.5, 0.5)


def test_sigmoid_rampup_values():
    assert sigmoid_rampup(0, 30) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(15, 30) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(30, 30) == 1.0
    assert sigmoid_rampup(299, 30) == 1.0
    assert sigmoid_rampup(-3, 30) == pytest.approx(math.exp(-5))
    assert sigmoid_rampup(0, 0) == 1.0
    values = [sigmoid_rampup(e, 30) for e in range(31)]
    assert all(a < b for a, b in zip(values, values[1:]))


def _mean_over_ranks_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=world_size)
    try:
        # Two training steps per rank, as collate_outputs stacks them; values differ between ranks.
        means = mean_over_ranks({"crf": np.array([[1.0 + rank], [3.0 + rank]]), "vm": np.array([[10.0 * rank]] * 2)})
        (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(means))
    finally:
        torch.distributed.destroy_process_group()


def test_logged_components_are_averaged_over_ddp_ranks(tmp_path: Path):
    torch.multiprocessing.spawn(_mean_over_ranks_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in range(2):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {"crf": 2.5, "vm": 5.0}
    assert mean_over_ranks({"crf": np.array([[1.0], [3.0]])}) == {"crf": 2.0}  # no process group: local mean


def _started_trainer(name: str) -> nnUNetTrainerPASeg:
    from nnunetv2.run.run_training import get_trainer_from_args

    torch.manual_seed(0)
    trainer = get_trainer_from_args(str(DATASET_ID), "3d_small", 0, name, device=torch.device("cpu"))
    trainer.on_train_start()
    trainer.on_train_epoch_start()
    return trainer


@pytest.mark.usefixtures("pipeline_env")
def test_loss_is_partial_plus_ramped_regularisers_on_a_real_batch():
    trainer = _started_trainer("nnUNetTrainerPASeg")
    batch = next(trainer.dataloader_train)
    data, target = batch["data"], batch["target"]
    assert isinstance(target, list) and (target[0] == 2).any(), "the batch should contain ignore voxels"
    data, guide = trainer.split_batch(data)
    assert torch.equal(guide, data)  # one image channel, no clean guide: the guide is the network input
    output = trainer.network(data)
    probs = torch.softmax(output[0].float(), 1)
    crf_full = trainer.crf_loss(probs, data).item()

    # No pseudo-Dice logged yet: the regularisers are off, whatever the epoch.
    trainer.current_epoch = 50
    total, parts = trainer.compute_loss(output, target, guide)
    assert trainer.ramp_weight(50) == 0.0 and total.item() == pytest.approx(parts["partial"].item(), rel=1e-6)
    assert math.isfinite(parts["crf"].item()) and math.isfinite(parts["vm"].item())  # still computed, for the log
    head = trainer.network.decoder.seg_layers[-1].weight
    grad_off, = torch.autograd.grad(total, head, retain_graph=True)
    grad_partial, = torch.autograd.grad(trainer.loss(output, target), head, retain_graph=True)
    assert torch.allclose(grad_off, grad_partial)
    # Once an epoch's pseudo-Dice reached 0.5 (epoch 7 here), the ramp runs from the next epoch on.
    for epoch, dice in enumerate([0.0] * 7 + [0.6] + [0.3] * (trainer.num_epochs - 8)):
        trainer.logger.log("mean_fg_dice", dice, epoch)
    assert [trainer.ramp_weight(e) for e in (0, 7, 8, 58)] == pytest.approx(
        [0.0, 0.0, math.exp(-5), math.exp(-5 * 0.25)])  # ramp_epochs = 10% of 1000

    totals = {}
    for epoch in (8, 58, trainer.num_epochs - 1):
        trainer.current_epoch = epoch
        total, parts = trainer.compute_loss(output, target, guide)
        assert parts["partial"].item() == pytest.approx(trainer.loss(output, target).item(), rel=1e-6)
        ramp = trainer.ramp_weight(epoch)
        expected = parts["partial"] + ramp * (1.0 * parts["crf"] + 0.1 * parts["vm"])
        assert total.item() == pytest.approx(expected.item(), rel=1e-5)
        assert parts["vm"].item() == pytest.approx(trainer.vm_loss(probs, data).item(), rel=1e-5)
        totals[epoch] = total.item()
    assert totals[8] < totals[58] < totals[trainer.num_epochs - 1]
    # The CRF sees a copy on a grid of about 1 mm: the axes finer than that (0.8 and 0.9 mm here) are resampled, with
    # the kernel's sigma in mm on that grid.
    assert trainer.configuration_manager.spacing == pytest.approx([1.1, 0.8, 0.9])
    assert trainer.crf_scales() == pytest.approx((1.0, 0.8, 0.9))
    assert trainer.crf_loss.spacing == pytest.approx((1.1, 1.0, 1.0)) and trainer.crf_loss.sigma_xy == 5.0
    assert parts["crf"].item() != pytest.approx(crf_full, rel=1e-3)
    trainer.crf_grid_mm = None  # and crf_downsample None: the full-size patch
    assert trainer.compute_loss(output, target, guide)[1]["crf"].item() == pytest.approx(crf_full, rel=1e-6)

    # Once on, the regularisers reach the network: the full-resolution head's gradient differs from the partial
    # loss's.
    grad_total, = torch.autograd.grad(total, head, retain_graph=True)
    grad_partial, = torch.autograd.grad(trainer.loss(output, target), head)
    assert not torch.allclose(grad_total, grad_partial)


@pytest.mark.usefixtures("pipeline_env")
def test_pce_variant_is_nnunet_loss_only():
    trainer = _started_trainer("nnUNetTrainerPASeg_pCE")
    assert trainer.regularisers == []
    trainer.logger.log("mean_fg_dice", 0.9, 0)
    assert trainer.ramp_weight(1) == 0.0  # nothing to ramp up
    batch = next(trainer.dataloader_train)
    output = trainer.network(batch["data"])
    total, parts = trainer.compute_loss(output, batch["target"], batch["data"])
    assert total.item() == trainer.loss(output, batch["target"]).item()
    assert set(parts) == {"partial"}


@pytest.mark.usefixtures("pipeline_env")
def test_train_steps_log_each_component_and_the_ramp():
    trainer = _started_trainer("nnUNetTrainerPASeg")
    outputs = [trainer.train_step(next(trainer.dataloader_train)) for _ in range(2)]
    assert set(outputs[0]) == {"loss", "partial", "crf", "vm"}
    for out in outputs:
        recomposed = out["partial"] + trainer.ramp_weight(0) * (out["crf"] + 0.1 * out["vm"])
        assert out["loss"] == pytest.approx(recomposed, rel=1e-5)
    trainer.on_train_epoch_end(outputs)
    for part in ("partial", "crf", "vm"):
        assert trainer.logger.get_value(f"train_{part}", step=0) == pytest.approx(
            np.mean([o[part] for o in outputs]), rel=1e-6)
    assert trainer.logger.get_value("ramp", step=0) == 0.0  # no pseudo-Dice yet
    log_text = Path(trainer.log_file).read_text()
    assert "train_partial" in log_text and "train_crf" in log_text and "ramp weight" in log_text
    assert "off until the pseudo Dice reaches 0.5" in log_text


@pytest.mark.usefixtures("pipeline_env")
def test_ramp_from_start_variant_is_the_reference_schedule():
    trainer = _started_trainer("nnUNetTrainerPASeg_rampFromStart")
    assert trainer.ramp_weight(0) == pytest.approx(math.exp(-5))
    assert trainer.ramp_weight(50) == pytest.approx(math.exp(-5 * 0.25))


@pytest.mark.usefixtures("pipeline_env")
def test_clean_guide_travels_as_the_last_channel_of_the_training_batch():
    trainer = _started_trainer("nnUNetTrainerPASeg_cleanGuide")
    batch = next(trainer.dataloader_train)
    assert batch["data"].shape[1] == trainer.num_input_channels + 1
    data, guide = trainer.split_batch(batch["data"])
    assert data.shape[1] == trainer.num_input_channels and guide.shape[1] == 1
    assert set(trainer.train_step(batch)) == {"loss", "partial", "crf", "vm"}
    with pytest.raises(ValueError, match=r"1 channels, expected 2 \(1 network inputs \+ the guide\)"):
        trainer.split_batch(data)


@pytest.mark.usefixtures("pipeline_env")
def test_full_res_weights_scale_the_regularisers_by_the_full_resolution_output_weight():
    trainer = _started_trainer("nnUNetTrainerPASeg_fullResWeights")
    scale = trainer.regulariser_scale()
    assert scale == trainer.loss.weight_factors[0] and 0 < scale < 1
    for epoch in range(3):
        trainer.logger.log("mean_fg_dice", 0.9, epoch)
    trainer.current_epoch = 3
    batch = next(trainer.dataloader_train)
    data, guide = trainer.split_batch(batch["data"])
    total, parts = trainer.compute_loss(trainer.network(data), batch["target"], guide)
    ramp = trainer.ramp_weight(3)
    assert ramp > 0
    expected = parts["partial"] + ramp * scale * (parts["crf"] + 0.1 * parts["vm"])
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.usefixtures("pipeline_env")
def test_mm_crf_measures_the_kernel_in_millimetres_of_its_grid():
    trainer = _started_trainer("nnUNetTrainerPASeg_mmCRF")
    spacing = trainer.configuration_manager.spacing
    scales = crf_grid_scales(spacing, 1.0)
    assert trainer.crf_scales() == scales and min(spacing) < 1.0 and scales != (1.0, 1.0, 1.0)
    assert trainer.crf_loss.sigma_xy == 5.0
    assert trainer.crf_loss.spacing == pytest.approx([s / f for s, f in zip(spacing, scales)])


def _run_training(*extra: str, epochs: int) -> None:
    run_cli("nnUNetv2_train", DATASET_ID, "3d_small", "0", "-tr", TEST_TRAINER, "-device", "cpu", *extra,
            env={"PASEG_TEST_NUM_EPOCHS": str(epochs)})


def test_end_to_end_train_continue_export_predict_evaluate(pipeline_env: dict[str, Path], tmp_path: Path):
    raw = pipeline_env["nnUNet_raw"] / DATASET
    quality = json.loads((raw / "pseudo_label_quality.json").read_text())
    assert quality, "paseg_convert should report the pseudo-label quality against the full masks"
    model_dir = pipeline_env["nnUNet_results"] / DATASET / f"{TEST_TRAINER}__nnUNetPlans__3d_small"
    fold_dir = model_dir / "fold_0"

    _run_training(epochs=2)
    first_log = sorted(fold_dir.glob("training_log_*.txt"))
    assert len(first_log) == 1
    assert first_log[0].read_text().count("train_crf") == 2
    assert (fold_dir / "progress.png").is_file()

    # --c from the final checkpoint of a 2-epoch run, now asked for 3 epochs: only epoch 2 runs, with the ramp
    # weight of epoch 2 (started after epoch 0 by the restored pseudo-Dice; ramp_fraction = 1: the ramp spans all
    # 3 epochs), and the logged curves go on.
    _run_training("--c", epochs=3)
    continued_log = sorted(set(fold_dir.glob("training_log_*.txt")) - set(first_log))
    assert len(continued_log) == 1  # log files are named by the start time in seconds; the first run took longer
    text = continued_log[0].read_text()
    assert "Epoch 2" in text and "Epoch 0" not in text and "Epoch 1" not in text
    checkpoint = torch.load(fold_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert checkpoint["current_epoch"] == 3
    logged = checkpoint["logging"]
    assert all(np.isfinite(logged["mean_fg_dice"])), "the test trainer's ramp start needs a pseudo-Dice >= 0"
    assert logged["ramp"] == pytest.approx([0.0, sigmoid_rampup(0, 2), sigmoid_rampup(1, 3)])
    for key in ("train_partial", "train_crf", "train_vm", "train_losses", "val_losses"):
        assert len(logged[key]) == 3 and all(np.isfinite(logged[key])), key

    run_cli("nnUNetv2_find_best_configuration", DATASET_ID, "-c", "3d_small", "-tr", TEST_TRAINER, "-f", "0",
            "-np", "1")
    assert (model_dir / "crossval_results_folds_0" / "summary.json").is_file()

    zip_file = tmp_path / "model.zip"
    run_cli("nnUNetv2_export_model_to_zip", "-d", DATASET_ID, "-o", zip_file, "-c", "3d_small", "-tr", TEST_TRAINER,
            "-f", "0")
    installed = tmp_path / "installed_results"
    installed.mkdir()
    run_cli("nnUNetv2_install_pretrained_model_from_zip", zip_file, env={"nnUNet_results": str(installed)})

    predictions = tmp_path / "predictions"
    run_cli("nnUNetv2_predict", "-i", raw / "imagesTs", "-o", predictions, "-d", DATASET_ID, "-c", "3d_small",
            "-f", "0", "-tr", TEST_TRAINER, "--disable_tta", "-device", "cpu", "-npp", "1", "-nps", "1",
            env={"nnUNet_results": str(installed)})
    run_cli("nnUNetv2_evaluate_folder", raw / "labelsTs", predictions, "-djfile", predictions / "dataset.json",
            "-pfile", predictions / "plans.json", "-np", "1")
    summary = json.loads((predictions / "summary.json").read_text())
    assert sorted(Path(c["prediction_file"]).name for c in summary["metric_per_case"]) == \
        ["case05.nii.gz", "case06.nii.gz"]
    assert 0.0 <= summary["foreground_mean"]["Dice"] <= 1.0
