"""Stage 2 (nnUNetTrainerSCM): the CKD term, the snapshot schedule, stage-1 discovery, and the whole two-stage
pipeline through nnU-Net's own commands (stage 1 for both networks -> SCM, interrupted and continued -> predict ->
evaluate)."""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from batchgeneratorsv2.transforms.utils.deep_supervision_downsampling import DownsampleSegForDSTransform
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans

from nnunetv2_paseg.losses import cross_distillation_loss
from nnunetv2_paseg.trainers.paseg_aux import (PLAIN_UNET, RESENC_UNET, auxiliary_architecture,
                                               resenc_preset_blocks)
from nnunetv2_paseg.trainers.scm import (downsample_like, ema_update, ensemble_teacher, frozen_copy,
                                         hard_pseudo_labels, is_refresh_epoch, load_full_network, refresh_snapshot,
                                         stage1_checkpoint)
from tests.conftest import run_cli
from tests.synthetic import ellipsoid_case

REQ_IMPORT = ["conv_op", "norm_op", "dropout_op", "nonlin"]


def plain_kwargs(n_stages: int = 3, width: int = 4) -> dict:
    return dict(n_stages=n_stages, features_per_stage=[width * 2 ** i for i in range(n_stages)],
                conv_op="torch.nn.modules.conv.Conv3d", kernel_sizes=[[3, 3, 3]] * n_stages,
                strides=[[1, 1, 1]] + [[2, 2, 2]] * (n_stages - 1), n_conv_per_stage=[2] * n_stages,
                n_conv_per_stage_decoder=[2] * (n_stages - 1), conv_bias=True,
                norm_op="torch.nn.modules.instancenorm.InstanceNorm3d", norm_op_kwargs={"eps": 1e-5, "affine": True},
                dropout_op=None, dropout_op_kwargs=None, nonlin="torch.nn.LeakyReLU", nonlin_kwargs={"inplace": True})


def build(arch: str, kwargs: dict, classes: int = 2) -> torch.nn.Module:
    return get_network_from_plans(arch, kwargs, REQ_IMPORT, 1, classes, deep_supervision=True)


# --- the CKD term ------------------------------------------------------------------------------------------------

def test_ckd_matches_hand_computation():
    student = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1, 1)
    teacher = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1, 1)
    t = 4.0
    p_s = [math.exp(0.0) / (math.exp(0.0) + math.exp(0.25)), math.exp(0.25) / (math.exp(0.0) + math.exp(0.25))]
    p_t = [math.exp(0.5) / (math.exp(0.5) + math.exp(0.0)), math.exp(0.0) / (math.exp(0.5) + math.exp(0.0))]
    kl_teacher_student = sum(q * math.log(q / p) for q, p in zip(p_t, p_s))
    kl_student_teacher = sum(p * math.log(p / q) for q, p in zip(p_t, p_s))
    value = cross_distillation_loss(student, teacher, t).item()
    assert value == pytest.approx(t * t * kl_teacher_student, rel=1e-6)
    # The two directions differ here, so a swapped implementation would fail the line above.
    assert abs(kl_teacher_student - kl_student_teacher) > 1e-4


def test_ckd_is_mean_over_voxels_and_zero_when_equal():
    torch.manual_seed(0)
    student, teacher = torch.randn(2, 3, 4, 5, 6), torch.randn(2, 3, 4, 5, 6)
    per_voxel = [cross_distillation_loss(student[n:n + 1, :, i:i + 1, j:j + 1, k:k + 1],
                                         teacher[n:n + 1, :, i:i + 1, j:j + 1, k:k + 1], 2.0)
                 for n in range(2) for i in range(4) for j in range(5) for k in range(6)]
    assert cross_distillation_loss(student, teacher, 2.0).item() == pytest.approx(torch.stack(per_voxel).mean().item(),
                                                                                  rel=1e-5)
    assert cross_distillation_loss(student, student.clone(), 4.0).item() == pytest.approx(0.0, abs=1e-7)
    assert cross_distillation_loss(student, teacher, 4.0).item() > 0


def test_ckd_gradient_pulls_student_towards_teacher():
    torch.manual_seed(1)
    t = 4.0
    student = torch.randn(2, 3, 3, 4, 5, requires_grad=True)
    teacher = torch.randn(2, 3, 3, 4, 5, requires_grad=True)
    loss = cross_distillation_loss(student, teacher, t)
    loss.backward()
    p_s, p_t = torch.softmax(student.detach() / t, 1), torch.softmax(teacher.detach() / t, 1)
    voxels = student[:, 0].numel()
    torch.testing.assert_close(student.grad, t * (p_s - p_t) / voxels, rtol=1e-4, atol=1e-7)
    assert teacher.grad is None  # the teacher's soft labels are constants
    with torch.no_grad():
        stepped = cross_distillation_loss(student - 10.0 * student.grad, teacher, t)
    assert stepped < loss


def test_ckd_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        cross_distillation_loss(torch.zeros(1, 2, 4, 4, 4), torch.zeros(1, 2, 4, 4, 3))
    with pytest.raises(ValueError, match="temperature"):
        cross_distillation_loss(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), 0.0)


# --- hard pseudo-labels and deep supervision -------------------------------------------------------------------

def test_pseudo_labels_keep_clicked_voxels_and_downsample_like_nnunet():
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 8, 12, 10)
    labels = torch.randint(0, 4, (2, 1, 8, 12, 10)).to(torch.int16)  # 3 = ignore
    pseudo = hard_pseudo_labels(logits, labels, ignore_label=3)
    argmax = logits.argmax(1, keepdim=True).to(torch.int16)
    assert torch.equal(pseudo[labels == 3], argmax[labels == 3])
    assert torch.equal(pseudo[labels != 3], labels[labels != 3])
    assert torch.equal(hard_pseudo_labels(logits), logits.argmax(1, keepdim=True))

    scales = [[1, 1, 1], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]]
    nnunet = [DownsampleSegForDSTransform(scales)(segmentation=labels[n])["segmentation"] for n in range(2)]
    targets = [torch.stack([nnunet[n][s] for n in range(2)]) for s in range(3)]
    ours = downsample_like(labels, targets)
    for mine, theirs in zip(ours, targets):
        assert mine.shape == theirs.shape and torch.equal(mine, theirs)


def test_ensemble_teacher_is_the_mean_softmax_and_the_surer_snapshot_wins():
    torch.manual_seed(3)
    a, b = torch.randn(2, 3, 4, 5, 6), torch.randn(2, 3, 4, 5, 6)
    mean = ensemble_teacher(a, b)
    assert torch.allclose(mean, (a.softmax(1) + b.softmax(1)) / 2)
    assert torch.allclose(mean.sum(1), torch.ones(2, 4, 5, 6))
    agree = a.argmax(1) == b.argmax(1)
    assert torch.equal(mean.argmax(1)[agree], a.argmax(1)[agree])
    sure, unsure = torch.tensor([[[5.0], [0.0]]]), torch.tensor([[[0.0], [0.5]]])  # (1, 2, 1)
    assert mean.dtype == torch.float32 and ensemble_teacher(sure, unsure).argmax(1).tolist() == [[0]]
    with pytest.raises(ValueError, match="one shape"):
        ensemble_teacher(a, b[:, :2])


# --- the snapshot schedule ---------------------------------------------------------------------------------------

def test_refresh_epochs():
    assert [e for e in range(100) if is_refresh_epoch(e, 100, 0.2)] == [20, 40, 60, 80]
    assert [e for e in range(4) if is_refresh_epoch(e, 4, 0.5)] == [2]
    assert [e for e in range(3) if is_refresh_epoch(e, 3, 0.2)] == [1, 2]


def test_snapshot_changes_exactly_at_refresh_epochs():
    torch.manual_seed(3)
    network = build(PLAIN_UNET, plain_kwargs())
    snapshot = frozen_copy(network)
    assert not snapshot.training and not any(p.requires_grad for p in snapshot.parameters())
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    x = torch.randn(1, 1, 8, 8, 8)

    def weights(module):
        return torch.cat([p.detach().flatten().clone() for p in module.parameters()])

    expected, num_epochs = weights(network), 6
    for epoch in range(num_epochs):
        if is_refresh_epoch(epoch, num_epochs, 0.34):  # period 2: epochs 2 and 4
            refresh_snapshot(snapshot, network)
            expected = weights(network)
        for _ in range(2):
            optimizer.zero_grad()
            network(x)[0].square().mean().backward()
            optimizer.step()
        assert torch.equal(weights(snapshot), expected), f"epoch {epoch}"
        assert not torch.equal(weights(snapshot), weights(network))


def test_ema_snapshot_is_the_moving_average_of_the_weights():
    torch.manual_seed(4)
    network = build(PLAIN_UNET, plain_kwargs())
    snapshot = frozen_copy(network)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    x, decay = torch.randn(1, 1, 8, 8, 8), 0.9
    expected = [p.detach().clone() for p in network.parameters()]
    for _ in range(3):
        optimizer.zero_grad()
        network(x)[0].square().mean().backward()
        optimizer.step()
        ema_update(snapshot, network, decay)
        expected = [decay * e + (1 - decay) * p.detach() for e, p in zip(expected, network.parameters())]
    for ema, value, current in zip(snapshot.parameters(), expected, network.parameters()):
        assert torch.allclose(ema, value, atol=1e-6)
    assert not all(torch.equal(e, c) for e, c in zip(snapshot.parameters(), network.parameters()))
    assert not any(p.requires_grad for p in snapshot.parameters())


def test_snapshots_and_stage1_weights_pass_through_ddp_and_compile_wrappers(tmp_path, monkeypatch):
    """The trainer's networks are DDP(torch.compile(net)) under -num_gpus N with nnUNet_compile; snapshots, stage-1
    loading and checkpoints must see the plain network's key names. A one-process gloo group gives a real DDP."""
    import torch.distributed as dist
    from nnunetv2.run.run_training import find_free_network_port
    from torch.nn.parallel import DistributedDataParallel as DDP

    from nnunetv2_paseg.trainers.scm import unwrap

    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(find_free_network_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        torch.manual_seed(5)
        plain = build(PLAIN_UNET, plain_kwargs())
        wrapped = DDP(torch.compile(plain))
        assert unwrap(wrapped) is plain and unwrap(torch.compile(plain)) is plain and unwrap(plain) is plain
        snapshot = frozen_copy(wrapped)
        assert type(snapshot) is type(plain) and snapshot.state_dict().keys() == plain.state_dict().keys()

        path = tmp_path / "stage1.pth"
        source = build(PLAIN_UNET, plain_kwargs())
        torch.save({"network_weights": source.state_dict()}, path)
        load_full_network(wrapped, path, "primary")
        refresh_snapshot(snapshot, wrapped)
        for key, value in source.state_dict().items():
            assert torch.equal(plain.state_dict()[key], value) and torch.equal(snapshot.state_dict()[key], value)
    finally:
        dist.destroy_process_group()


# --- the auxiliary architecture and stage-1 discovery ------------------------------------------------------------

def test_auxiliary_architecture_swaps_the_family_and_keeps_the_stages():
    kwargs = plain_kwargs(n_stages=4)
    arch, aux = auxiliary_architecture(PLAIN_UNET, kwargs)
    assert arch == RESENC_UNET and aux["n_blocks_per_stage"] == [1, 1, 1, 1]
    assert aux["n_conv_per_stage_decoder"] == [1, 1, 1] and "n_conv_per_stage" not in aux
    for key in ("n_stages", "features_per_stage", "kernel_sizes", "strides", "norm_op", "nonlin"):
        assert aux[key] == kwargs[key]
    back_arch, back = auxiliary_architecture(arch, aux)
    assert back_arch == PLAIN_UNET and back == kwargs
    primary, auxiliary = build(PLAIN_UNET, kwargs), build(arch, aux)
    x = torch.randn(1, 1, 16, 16, 16)
    assert [o.shape for o in primary(x)] == [o.shape for o in auxiliary(x)]
    with pytest.raises(ValueError, match="no auxiliary architecture"):
        auxiliary_architecture("my.own.Net", kwargs)


def test_auxiliary_architecture_at_nnunet_preset_depth():
    assert resenc_preset_blocks(4) == [1, 3, 4, 6] and resenc_preset_blocks(6) == [1, 3, 4, 6, 6, 6]
    kwargs = plain_kwargs(n_stages=3)
    arch, aux = auxiliary_architecture(PLAIN_UNET, kwargs, resenc_preset_blocks(3))
    assert arch == RESENC_UNET and aux["n_blocks_per_stage"] == [1, 3, 4]
    x = torch.randn(1, 1, 16, 16, 16)
    assert [o.shape for o in build(arch, aux)(x)] == [o.shape for o in build(PLAIN_UNET, kwargs)(x)]
    with pytest.raises(ValueError, match="for each of the 3 stages"):
        auxiliary_architecture(PLAIN_UNET, kwargs, [1, 3])


def test_auxiliary_network_costs_about_as_much_as_the_primary():
    """SCM trains A and B and evaluates A' and B' every step; a B much heavier than A breaks its time budget."""
    from torch.utils.flop_counter import FlopCounterMode

    def training_flops(arch: str, kwargs: dict) -> int:
        with torch.device("meta"):
            network = get_network_from_plans(arch, kwargs, REQ_IMPORT, 1, 2, allow_init=False, deep_supervision=True)
            x = torch.randn(2, 1, 48, 96, 96)
        with FlopCounterMode(display=False) as counter:
            sum(o.mean() for o in network(x)).backward()
        return counter.get_total_flops()

    kwargs = plain_kwargs(n_stages=5, width=32)
    ratio = training_flops(*auxiliary_architecture(PLAIN_UNET, kwargs)) / training_flops(PLAIN_UNET, kwargs)
    assert 0.75 < ratio < 1.1, ratio


def test_missing_stage1_checkpoint_lists_what_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.delenv("PASEG_PRIMARY_WEIGHTS", raising=False)
    monkeypatch.setenv("nnUNet_results", str(tmp_path))
    with pytest.raises(FileNotFoundError) as error:
        stage1_checkpoint("primary", "PASEG_PRIMARY_WEIGHTS", "nnUNetTrainerPASeg", "Dataset001_X", "nnUNetPlans",
                          "3d_fullres", 0)
    fold_dir = tmp_path / "Dataset001_X" / "nnUNetTrainerPASeg__nnUNetPlans__3d_fullres" / "fold_0"
    for expected in (fold_dir / "checkpoint_final.pth", fold_dir / "checkpoint_best.pth", "PASEG_PRIMARY_WEIGHTS"):
        assert str(expected) in str(error.value)

    fold_dir.mkdir(parents=True)
    (fold_dir / "checkpoint_best.pth").touch()
    assert stage1_checkpoint("primary", "PASEG_PRIMARY_WEIGHTS", "nnUNetTrainerPASeg", "Dataset001_X",
                             "nnUNetPlans", "3d_fullres", 0) == fold_dir / "checkpoint_best.pth"
    (fold_dir / "checkpoint_final.pth").touch()
    assert stage1_checkpoint("primary", "PASEG_PRIMARY_WEIGHTS", "nnUNetTrainerPASeg", "Dataset001_X",
                             "nnUNetPlans", "3d_fullres", 0) == fold_dir / "checkpoint_final.pth"

    override = tmp_path / "elsewhere.pth"
    monkeypatch.setenv("PASEG_PRIMARY_WEIGHTS", str(override))
    with pytest.raises(FileNotFoundError, match="PASEG_PRIMARY_WEIGHTS=.*elsewhere.pth"):
        stage1_checkpoint("primary", "PASEG_PRIMARY_WEIGHTS", "nnUNetTrainerPASeg", "Dataset001_X", "nnUNetPlans",
                          "3d_fullres", 0)
    override.touch()
    assert stage1_checkpoint("primary", "PASEG_PRIMARY_WEIGHTS", "nnUNetTrainerPASeg", "Dataset001_X",
                             "nnUNetPlans", "3d_fullres", 0) == override


def test_stage1_weights_load_whole_network_or_fail_clearly(tmp_path):
    torch.manual_seed(4)
    kwargs = plain_kwargs()
    source, target = build(PLAIN_UNET, kwargs), build(PLAIN_UNET, kwargs)
    path = tmp_path / "checkpoint_final.pth"
    torch.save({"network_weights": source.state_dict(), "trainer_name": "nnUNetTrainerPASeg"}, path)
    load_full_network(target, path, "primary")
    for key, value in source.state_dict().items():  # segmentation heads included
        assert torch.equal(target.state_dict()[key], value), key

    aux_path = tmp_path / "aux.pth"
    torch.save({"network_weights": build(*auxiliary_architecture(PLAIN_UNET, kwargs)).state_dict(),
                "trainer_name": "nnUNetTrainerPASegAux"}, aux_path)
    with pytest.raises(ValueError, match=r"aux\.pth \(trainer nnUNetTrainerPASegAux\) does not fit the primary"):
        load_full_network(target, aux_path, "primary")
    three_classes = tmp_path / "three.pth"
    torch.save({"network_weights": build(PLAIN_UNET, kwargs, classes=3).state_dict()}, three_classes)
    with pytest.raises(ValueError, match="wrong shape"):
        load_full_network(target, three_classes, "primary")


# --- the two-stage pipeline through nnU-Net's commands ------------------------------------------------------------

DATASET_ID, DATASET = 987, "Dataset987_SCMTest"
SHAPE = (24, 32, 28)


def write_raw_dataset(raw: Path) -> tuple[Path, Path]:
    """5 training cases with partial labels (0 background outside the click box, 1 the object's core, 2 ignore)
    and 2 test cases with full masks. Returns (imagesTs, labelsTs)."""
    root = raw / DATASET
    folders = {name: root / name for name in ("imagesTr", "labelsTr", "imagesTs", "labelsTs")}
    for folder in folders.values():
        folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(7):
        centre = tuple(s / 2 + rng.uniform(-3, 3) for s in SHAPE)
        img, mask = ellipsoid_case(SHAPE, centre=centre, radii=(5, 7, 6), seed=i)
        case = f"case{i:02d}"
        m = sitk.GetArrayFromImage(mask)
        if i < 5:
            core = sitk.GetArrayFromImage(sitk.BinaryErode(mask, [2, 2, 2]))
            zz, yy, xx = np.nonzero(m)
            partial = np.full(m.shape, 2, np.uint8)
            outside = np.ones(m.shape, bool)
            outside[zz.min() - 1:zz.max() + 2, yy.min() - 1:yy.max() + 2, xx.min() - 1:xx.max() + 2] = False
            partial[outside] = 0
            partial[core > 0] = 1
            label = sitk.GetImageFromArray(partial)
            label.CopyInformation(mask)
            sitk.WriteImage(img, str(folders["imagesTr"] / f"{case}_0000.nii.gz"))
            sitk.WriteImage(label, str(folders["labelsTr"] / f"{case}.nii.gz"))
        else:
            sitk.WriteImage(img, str(folders["imagesTs"] / f"{case}_0000.nii.gz"))
            sitk.WriteImage(mask, str(folders["labelsTs"] / f"{case}.nii.gz"))
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "MRI"}, "labels": {"background": 0, "object": 1, "ignore": 2},
        "numTraining": 5, "file_ending": ".nii.gz"}))
    return folders["imagesTs"], folders["labelsTs"]


def state(path: Path, key: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)[key]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def newest_log(folder: Path) -> str:
    return max(folder.glob("training_log_*.txt"), key=os.path.getmtime).read_text()


def test_two_stage_pipeline_with_interrupted_scm(nnunet_env):
    images_ts, labels_ts = write_raw_dataset(nnunet_env["nnUNet_raw"])
    # the planner calls torch.set_num_threads(nnUNet_n_proc_DA), which must not be the fixture's 0 there
    run_cli("nnUNetv2_plan_and_preprocess", "-d", DATASET_ID, "-c", "3d_fullres", "-np", "1",
            "--verify_dataset_integrity", env={"nnUNet_n_proc_DA": "1"})
    run_cli("paseg_add_small_plans", "-d", DATASET_ID, "-n", "3d_small", "--max_features", "16")

    results = nnunet_env["nnUNet_results"] / DATASET
    stage1 = {}
    for trainer in ("nnUNetTrainerPASeg_scmtest", "nnUNetTrainerPASegAux_scmtest",
                    "nnUNetTrainerPASegAux_pCE_scmtest"):
        run_cli("nnUNetv2_train", DATASET_ID, "3d_small", "0", "-tr", trainer, "-device", "cpu")
        stage1[trainer] = results / f"{trainer}__nnUNetPlans__3d_small" / "fold_0" / "checkpoint_final.pth"
    # the auxiliary stage-1 model predicts like any nnU-Net model (nnUNetv2_predict rebuilds its architecture), and
    # two stage-1 models average through nnU-Net's own nnUNetv2_ensemble (README: the stage-1 ensemble)
    stage1_predictions = {}
    for trainer in ("nnUNetTrainerPASeg_scmtest", "nnUNetTrainerPASegAux_pCE_scmtest"):
        stage1_predictions[trainer] = nnunet_env["nnUNet_results"].parent / f"predictions_{trainer}"
        run_cli("nnUNetv2_predict", "-i", images_ts, "-o", stage1_predictions[trainer], "-d", DATASET_ID, "-c",
                "3d_small", "-f", "0", "-tr", trainer, "-device", "cpu", "-npp", "1", "-nps", "1",
                "--save_probabilities")
        assert len(list(stage1_predictions[trainer].glob("*.nii.gz"))) == 2
    ensemble = nnunet_env["nnUNet_results"].parent / "ensemble"
    run_cli("nnUNetv2_ensemble", "-i", *stage1_predictions.values(), "-o", ensemble, "-np", "1")
    for case in ("case05", "case06"):
        mean = np.mean([np.load(folder / f"{case}.npz")["probabilities"] for folder in stage1_predictions.values()], 0)
        voted = sitk.GetArrayFromImage(sitk.ReadImage(str(ensemble / f"{case}.nii.gz")))
        assert np.array_equal(voted, mean.argmax(0)), case
    primary_stage1 = state(stage1["nnUNetTrainerPASeg_scmtest"], "network_weights")
    aux_stage1 = state(stage1["nnUNetTrainerPASegAux_scmtest"], "network_weights")
    assert primary_stage1.keys() != aux_stage1.keys()  # two different architectures

    # the paper's SCM, interrupted after epoch 1 (stage-1 networks found by nnU-Net's folder convention)
    scm_dir = results / "nnUNetTrainerSCM_crossKD_scmtest__nnUNetPlans__3d_small" / "fold_0"
    train_scm = ("nnUNetv2_train", DATASET_ID, "3d_small", "0", "-tr", "nnUNetTrainerSCM_crossKD_scmtest", "-device",
                 "cpu")
    proc = run_cli(*train_scm, env={"PASEG_TEST_STOP_AFTER_EPOCH": "1"}, check=False)
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = newest_log(scm_dir)
    assert f"primary network initialised from stage-1 checkpoint {stage1['nnUNetTrainerPASeg_scmtest']}" in log
    assert f"auxiliary network initialised from stage-1 checkpoint {stage1['nnUNetTrainerPASegAux_scmtest']}" in log
    assert "snapshots refreshed" not in log
    interrupted = torch.load(scm_dir / "checkpoint_latest.pth", map_location="cpu", weights_only=False)
    assert interrupted["current_epoch"] == 2
    assert same(interrupted["scm_snapshot_primary_weights"], primary_stage1)  # frozen through epochs 0 and 1
    assert same(interrupted["scm_snapshot_aux_weights"], aux_stage1)
    assert not same(interrupted["network_weights"], primary_stage1)  # both networks trained
    assert not same(interrupted["scm_aux_network_weights"], aux_stage1)

    # --c resumes at epoch 2 from the checkpoint; the stage-1 weights are not looked at again (the overrides point
    # nowhere, so reinitialising would fail).
    run_cli(*train_scm, "--c", env={"PASEG_PRIMARY_WEIGHTS": str(scm_dir / "nowhere.pth"),
                                    "PASEG_AUX_WEIGHTS": str(scm_dir / "nowhere.pth")})
    log = newest_log(scm_dir)
    assert "initialised from stage-1" not in log
    assert re.search(r"Epoch 2\b", log) and not re.search(r"Epoch [01]\b", log)
    assert "snapshots refreshed from the current weights at epoch 2" in log
    assert "at epoch 3" not in log
    final = torch.load(scm_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert final["current_epoch"] == 4
    # refreshed at the start of epoch 2 from the weights the interrupted run left, then frozen through epoch 3
    assert same(final["scm_snapshot_primary_weights"], interrupted["network_weights"])
    assert same(final["scm_snapshot_aux_weights"], interrupted["scm_aux_network_weights"])
    logged = final["logging"]
    for key in ("train_losses", "train_primary_self", "train_primary_ckd", "train_aux_self", "train_aux_ckd",
                "train_aux_total", "snapshot_agreement"):
        assert len(logged[key]) == 4 and all(np.isfinite(logged[key])), key
    assert (scm_dir / "progress.png").is_file()

    # SCM's defaults: the primary network learns the frozen stage-1 ensemble of PASeg and the partial-loss auxiliary
    run_cli("nnUNetv2_train", DATASET_ID, "3d_small", "0", "-tr", "nnUNetTrainerSCM_scmtest", "-device", "cpu")
    default_dir = results / "nnUNetTrainerSCM_scmtest__nnUNetPlans__3d_small" / "fold_0"
    log = newest_log(default_dir)
    pce_aux = stage1["nnUNetTrainerPASegAux_pCE_scmtest"]
    assert f"auxiliary network initialised from stage-1 checkpoint {pce_aux}" in log
    assert "snapshots refreshed" not in log
    final = torch.load(default_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)
    assert final["current_epoch"] == 4
    pce_aux_stage1 = state(pce_aux, "network_weights")
    assert same(final["scm_snapshot_primary_weights"], primary_stage1)  # the stage-1 networks throughout
    assert same(final["scm_snapshot_aux_weights"], pce_aux_stage1)
    assert not same(final["network_weights"], primary_stage1)
    assert same(final["scm_aux_network_weights"], pce_aux_stage1)  # not trained: nothing of it would reach A
    assert "train_aux_self" not in final["logging"]
    assert len(final["logging"]["train_primary_self"]) == 4 and all(np.isfinite(final["logging"]["train_primary_self"]))

    # prediction with the primary network through nnU-Net's own predictor, then evaluation against full masks
    predictions = nnunet_env["nnUNet_results"].parent / "predictions"
    run_cli("nnUNetv2_predict", "-i", images_ts, "-o", predictions, "-d", DATASET_ID, "-c", "3d_small", "-f", "0",
            "-tr", "nnUNetTrainerSCM_scmtest", "-device", "cpu", "-npp", "1", "-nps", "1")
    assert sorted(p.name for p in predictions.glob("*.nii.gz")) == ["case05.nii.gz", "case06.nii.gz"]
    summary = predictions / "summary.json"
    run_cli("nnUNetv2_evaluate_folder", labels_ts, predictions, "-djfile", predictions / "dataset.json",
            "-pfile", predictions / "plans.json", "-o", summary, "-np", "1")
    dice = json.loads(summary.read_text())["mean"]["1"]["Dice"]
    assert 0.0 <= dice <= 1.0
