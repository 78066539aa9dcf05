"""nnUNetTrainerPASeg: ramp-up, loss composition and logging on a real network and batch, and the CPU pipeline
clicks -> paseg_convert -> plan/preprocess -> train (+ --c) -> export/install -> predict -> evaluate."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from nnunetv2_paseg.losses import VarianceMinimizationLoss
from nnunetv2_paseg.trainers.paseg import (crf_grid_scales, crf_weight, near_prediction, ramp_start_epoch,
                                          sigmoid_rampup)
from nnunetv2_paseg.trainers.progress_logger import mean_over_ranks
from tests.conftest import PIPELINE_DATASET, PIPELINE_DATASET_ID, run_cli, started_trainer

DATASET_ID, DATASET = PIPELINE_DATASET_ID, PIPELINE_DATASET
TEST_TRAINER = "nnUNetTrainerPASeg_test"


def test_ramp_starts_the_epoch_after_the_pseudo_dice_first_reaches_the_threshold():
    assert ramp_start_epoch([], 0.5) is None
    assert ramp_start_epoch([0.0, 0.2, float("nan"), 0.49], 0.5) is None
    assert ramp_start_epoch([0.0, 0.2, 0.5], 0.5) == 3
    assert ramp_start_epoch([0.0, 0.7, 0.1, 0.2], 0.5) == 2  # a later dip does not stop it
    assert ramp_start_epoch([0.0, 0.0], 0.0) == 1
    assert ramp_start_epoch([], None) == 0 and ramp_start_epoch([0.9], None) == 0


def test_a_ramp_deadline_starts_the_regularisers_whatever_the_pseudo_dice():
    never = [0.0, 0.1, 0.2, 0.1, 0.3]
    assert ramp_start_epoch(never[:2], 0.5, latest=3) is None  # before the deadline: still waiting
    assert ramp_start_epoch(never[:3], 0.5, latest=3) == 3 and ramp_start_epoch(never, 0.5, latest=3) == 3
    assert ramp_start_epoch([0.0, 0.6, 0.1], 0.5, latest=3) == 2  # reached earlier: the earlier start holds
    assert ramp_start_epoch(never, None, latest=3) == 0


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


def _regularisers(trainer) -> dict:
    return {term.name: term for term in trainer.loss.regularisers}


def test_crf_weight_is_divided_by_the_number_of_foreground_classes():
    assert crf_weight(1.0, 1) == 1.0 and crf_weight(1.0, 3) == pytest.approx(1 / 3) and crf_weight(0.0, 2) == 0.0
    assert crf_weight(1.0, 3, per_class=False) == 1.0
    with pytest.raises(ValueError, match="needs a foreground class"):
        crf_weight(1.0, 0)


@pytest.mark.usefixtures("pipeline_env")
def test_the_trainer_weights_its_crf_by_the_dataset_s_foreground_classes():
    from nnunetv2.utilities.label_handling.label_handling import LabelManager

    trainer = started_trainer("nnUNetTrainerPASeg")  # the pipeline dataset: one foreground class
    assert {term.name: term.weight for term in trainer.loss.regularisers} == {"crf": 1.0, "vm": 0.1}
    trainer.label_manager = LabelManager({"background": 0, "caudate": 1, "putamen": 2, "thalamus": 3, "ignore": 4},
                                         regions_class_order=None)
    assert {term.name: term.weight for term in trainer.build_regularisers()} == {"crf": 1 / 3, "vm": 0.1}
    trainer.crf_weight_per_class = False
    assert {term.name: term.weight for term in trainer.build_regularisers()} == {"crf": 1.0, "vm": 0.1}


@pytest.mark.usefixtures("pipeline_env")
def test_loss_is_partial_plus_ramped_regularisers_on_a_real_batch():
    trainer = started_trainer("nnUNetTrainerPASeg")
    batch = next(trainer.dataloader_train)
    data, target = batch["data"], batch["target"]
    assert isinstance(target, list) and (target[0] == 2).any(), "the batch should contain ignore voxels"
    data, guide = trainer.split_batch(data)
    assert torch.equal(guide, data)  # one image channel: the guide is the network input
    output = trainer.network(data)
    probs = torch.softmax(output[0].float(), 1)
    terms = _regularisers(trainer)
    assert [(name, term.weight) for name, term in terms.items()] == [("crf", 1.0), ("vm", 0.1)]
    crf, vm = terms["crf"].loss(probs, data).item(), terms["vm"].loss(probs, data).item()
    partial = trainer.loss.partial(output, target)

    def loss(weight: float) -> tuple[torch.Tensor, dict]:
        trainer.loss.parts.clear()
        trainer.loss.weight, trainer.loss.guide = weight, guide
        return trainer.loss(output, target), trainer.loss.parts[0]

    # No pseudo-Dice logged yet: the regularisers are off, whatever the epoch; still computed, for the log.
    assert trainer.ramp_weight(50) == 0.0
    total, parts = loss(0.0)
    assert total.item() == pytest.approx(partial.item(), rel=1e-6)
    assert parts["crf"].item() == pytest.approx(crf, rel=1e-5) and parts["vm"].item() == pytest.approx(vm, rel=1e-5)
    head = trainer.network.decoder.seg_layers[-1].weight
    grad_off, = torch.autograd.grad(total, head, retain_graph=True)
    grad_partial, = torch.autograd.grad(partial, head, retain_graph=True)
    assert torch.allclose(grad_off, grad_partial)
    # Without a guide (nnU-Net's validation step) the loss is the partial loss alone, and nothing is logged.
    trainer.loss.parts.clear()
    assert trainer.loss(output, target).item() == pytest.approx(partial.item(), rel=1e-6) and not trainer.loss.parts

    # Once an epoch's pseudo-Dice reached 0.5 (epoch 7 here), the ramp runs from the next epoch on.
    for epoch, dice in enumerate([0.0] * 7 + [0.6] + [0.3] * (trainer.num_epochs - 8)):
        trainer.logger.log("mean_fg_dice", dice, epoch)
    assert [trainer.ramp_weight(e) for e in (0, 7, 8, 58)] == pytest.approx(
        [0.0, 0.0, math.exp(-5), math.exp(-5 * 0.25)])  # ramp_epochs = 10% of 1000
    trainer.current_epoch = 58
    trainer.on_train_epoch_start()
    assert trainer.loss.weight == pytest.approx(math.exp(-5 * 0.25))
    total, parts = loss(trainer.loss.weight)
    assert total.item() == pytest.approx(partial.item() + trainer.loss.weight * (crf + 0.1 * vm), rel=1e-5)

    # The CRF sees a copy on a grid of about 1 mm: the axes finer than that (0.8 and 0.9 mm here) are resampled, with
    # the kernel's sigma in mm on that grid.
    assert trainer.configuration_manager.spacing == pytest.approx([1.1, 0.8, 0.9])
    assert trainer.crf_scales() == pytest.approx((1.0, 0.8, 0.9))
    crf_loss = trainer.build_crf_loss()
    assert crf_loss.spacing == pytest.approx((1.1, 1.0, 1.0)) and crf_loss.sigma_xy == 5.0
    assert crf != pytest.approx(crf_loss(probs, data).item(), rel=1e-3)  # the full-size patch differs

    # Once on, the regularisers reach the network: the full-resolution head's gradient differs from the partial
    # loss's.
    grad_total, = torch.autograd.grad(total, head, retain_graph=True)
    assert not torch.allclose(grad_total, grad_partial)


@pytest.mark.usefixtures("pipeline_env")
def test_pce_variant_is_nnunet_loss_only():
    trainer = started_trainer("nnUNetTrainerPASeg_pCE")
    assert trainer.loss.regularisers == []
    trainer.logger.log("mean_fg_dice", 0.9, 0)
    assert trainer.ramp_weight(1) == 0.0  # nothing to ramp up
    batch = next(trainer.dataloader_train)
    output = trainer.network(batch["data"])
    trainer.loss.guide = batch["data"]
    assert trainer.loss(output, batch["target"]).item() == trainer.loss.partial(output, batch["target"]).item()
    assert set(trainer.loss.parts[-1]) == {"partial"}


@pytest.mark.usefixtures("pipeline_env")
def test_train_steps_are_nnunets_and_log_each_component_and_the_ramp():
    trainer = started_trainer("nnUNetTrainerPASeg")
    assert type(trainer).train_step is nnUNetTrainer.train_step
    outputs = [trainer.train_step(next(trainer.dataloader_train)) for _ in range(2)]
    parts = trainer.loss.parts
    assert len(parts) == 2 and all(set(p) == {"partial", "crf", "vm"} for p in parts)
    for out, part in zip(outputs, parts):
        recomposed = part["partial"] + trainer.ramp_weight(0) * (part["crf"] + 0.1 * part["vm"])
        assert float(out["loss"]) == pytest.approx(float(recomposed), rel=1e-5)
    trainer.on_train_epoch_end(outputs)
    assert trainer.loss.parts == []
    for name in ("partial", "crf", "vm"):
        assert trainer.logger.get_value(f"train_{name}", step=0) == pytest.approx(
            np.mean([float(p[name]) for p in parts]), rel=1e-6)
    assert trainer.logger.get_value("ramp", step=0) == 0.0  # no pseudo-Dice yet
    log_text = Path(trainer.log_file).read_text()
    assert "train_partial" in log_text and "train_crf" in log_text and "ramp weight" in log_text
    assert "off until the pseudo Dice reaches 0.5" in log_text
    # Validation and prediction (eval mode) see the network as nnU-Net built it: no guide for the loss.
    trainer.network.eval()
    trainer.network(next(trainer.dataloader_train)["data"])
    assert trainer.loss.guide is None


def test_near_prediction_is_the_predicted_foreground_grown_by_the_radius():
    probs = torch.zeros(1, 3, 12, 12, 12)
    probs[:, 0] = 1.0
    probs[0, :, 2:4, 2:4, 2:4] = torch.tensor([0.2, 0.4, 0.4])[:, None, None, None]  # foreground as two classes
    probs[0, :, 9, 9, 9] = torch.tensor([0.6, 0.4, 0.0])  # below 0.5: not predicted
    band = near_prediction(probs.requires_grad_(), 2)
    expected = torch.zeros(1, 1, 12, 12, 12, dtype=torch.bool)
    expected[0, 0, 0:6, 0:6, 0:6] = True
    assert torch.equal(band, expected)


@pytest.mark.usefixtures("pipeline_env")
@pytest.mark.parametrize("trainer_name, region", [
    ("nnUNetTrainerPASeg_vmUnlabelledtest", lambda probs, target: target != 0),
    ("nnUNetTrainerPASeg_vmBandtest", lambda probs, target: (target != 0) & near_prediction(probs, 2)),
])
def test_vm_on_part_of_the_patch_gets_its_mask_from_the_target(trainer_name, region):
    trainer = started_trainer(trainer_name)
    batch = next(trainer.dataloader_train)
    data, target = batch["data"], batch["target"]
    assert (target[0] == 0).any() and (target[0] != 0).any()
    output = trainer.network(data)
    probs = torch.softmax(output[0].float(), 1)
    vm = _regularisers(trainer)["vm"]
    assert vm.needs_labels and vm.weight == 3.0
    mask = region(probs, target[0])
    assert mask.any()
    masked = VarianceMinimizationLoss(normalise="voxels")(probs, data, mask).item()
    assert vm.loss(probs, data, target[0]).item() == pytest.approx(masked, rel=1e-6)
    assert masked != pytest.approx(VarianceMinimizationLoss(normalise="voxels")(probs, data).item(), rel=1e-3)
    trainer.loss.parts.clear()
    trainer.loss.weight, trainer.loss.guide = 1.0, data
    total = trainer.loss(output, target)
    parts = trainer.loss.parts[0]
    assert parts["vm"].item() == pytest.approx(masked, rel=1e-5)
    assert total.item() == pytest.approx((parts["partial"] + parts["crf"] + 3.0 * parts["vm"]).item(), rel=1e-5)


@pytest.mark.usefixtures("pipeline_env")
def test_vm_on_the_band_leaves_out_the_unlabelled_voxels_far_from_the_prediction():
    trainer = started_trainer("nnUNetTrainerPASeg_vmBandtest")
    batch = next(trainer.dataloader_train)
    data, target = batch["data"], batch["target"][0]
    # A prediction that is exactly the labelled foreground: the band is it and 2 voxels around it, inside the box.
    foreground = (target == 1).float()
    assert foreground.any()
    probs = torch.cat([1 - foreground, foreground], 1)
    band = (target != 0) & (torch.nn.functional.max_pool3d(foreground, 5, stride=1, padding=2) > 0)
    assert band.sum() < (target != 0).sum()
    vm = VarianceMinimizationLoss(normalise="voxels")
    value = _regularisers(trainer)["vm"].loss(probs, data, target).item()
    assert value == pytest.approx(vm(probs, data, band).item(), rel=1e-6)
    assert value != pytest.approx(vm(probs, data, target != 0).item(), rel=1e-3)


@pytest.mark.usefixtures("pipeline_env")
def test_ramp_from_start_variant_is_the_reference_schedule():
    trainer = started_trainer("nnUNetTrainerPASeg_rampFromStart")
    assert trainer.ramp_weight(0) == pytest.approx(math.exp(-5))
    assert trainer.ramp_weight(50) == pytest.approx(math.exp(-5 * 0.25))


@pytest.mark.usefixtures("pipeline_env")
def test_the_guide_reaches_the_loss_through_a_compiled_network():
    # nnU-Net compiles the network on CUDA (not on the CPU): the loss must still get its guide, from the compiled
    # module's own forward hook.
    trainer = started_trainer("nnUNetTrainerPASeg_compiletest")
    assert type(trainer.network).__name__ == "OptimizedModule"
    trainer.train_step(next(trainer.dataloader_train))
    assert set(trainer.loss.parts[-1]) == {"partial", "crf", "vm"}


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
    assert (fold_dir / "progress.png").is_file() and (fold_dir / "loss_components.png").is_file()

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
