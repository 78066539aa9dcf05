"""nnU-Net's residual-encoder presets (``-pl nnUNetPlannerResEncM``, ``-p nnUNetResEncUNetMPlans``) through the whole
PA-Seg flow with nnU-Net's own commands: plan, the small configuration, stage 1 (a residual-encoder primary and a
plain auxiliary network), SCM, prediction with each model and evaluation."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nnunetv2_paseg.trainers.paseg_aux import PLAIN_UNET
from tests.conftest import PIPELINE_DATASET, PIPELINE_DATASET_ID, run_cli

PLANS = "nnUNetResEncUNetMPlans"


def _weights(fold_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(fold_dir / "checkpoint_final.pth", map_location="cpu", weights_only=False)["network_weights"]


@pytest.mark.usefixtures("pipeline_env")
def test_paseg_aux_and_scm_on_resenc_m_plans(pipeline_env: dict[str, Path]) -> None:
    dataset = str(PIPELINE_DATASET_ID)
    # the planner calls torch.set_num_threads(nnUNet_n_proc_DA), which must not be the fixture's 0 there
    run_cli("nnUNetv2_plan_and_preprocess", "-d", dataset, "-pl", "nnUNetPlannerResEncM", "-c", "3d_fullres",
            "-np", "1", env={"nnUNet_n_proc_DA": "1"})
    run_cli("paseg_add_small_plans", "-d", dataset, "-p", PLANS, "-n", "3d_small", "--max_features", "16")
    plans = json.loads((pipeline_env["nnUNet_preprocessed"] / PIPELINE_DATASET / f"{PLANS}.json").read_text())
    assert plans["configurations"]["3d_small"]["inherits_from"] == "3d_fullres"

    results = pipeline_env["nnUNet_results"] / PIPELINE_DATASET
    folds = {}
    for trainer in ("nnUNetTrainerPASeg_scmtest", "nnUNetTrainerPASegAux_pCE_scmtest", "nnUNetTrainerSCM_scmtest"):
        run_cli("nnUNetv2_train", dataset, "3d_small", "0", "-tr", trainer, "-p", PLANS, "-device", "cpu")
        folds[trainer] = results / f"{trainer}__{PLANS}__3d_small" / "fold_0"

    # stage 1: the primary is the plans' residual encoder, the auxiliary network the plain U-Net, and its log says so
    primary, aux = (_weights(folds[t]) for t in ("nnUNetTrainerPASeg_scmtest", "nnUNetTrainerPASegAux_pCE_scmtest"))
    assert any(".stem." in k for k in primary) and not any(".stem." in k for k in aux)
    aux_log = next(folds["nnUNetTrainerPASegAux_pCE_scmtest"].glob("training_log_*.txt")).read_text()
    assert f"network built (the auxiliary architecture, not the plans'): {PLAIN_UNET}" in aux_log
    for trainer, network in (("nnUNetTrainerPASeg_scmtest", "ResidualEncoderUNet"),
                             ("nnUNetTrainerPASegAux_pCE_scmtest", "PlainConvUNet")):
        assert json.loads((folds[trainer] / "debug.json").read_text())["network"] == network
    # SCM found both stage-1 models under the same plans
    scm_log = next(folds["nnUNetTrainerSCM_scmtest"].glob("training_log_*.txt")).read_text()
    for trainer in ("nnUNetTrainerPASeg_scmtest", "nnUNetTrainerPASegAux_pCE_scmtest"):
        assert f"initialised from stage-1 checkpoint {folds[trainer] / 'checkpoint_final.pth'}" in scm_log

    # each model predicts through nnU-Net's predictor (which rebuilds the network the trainer built) and is evaluated
    raw = pipeline_env["nnUNet_raw"] / PIPELINE_DATASET
    for trainer, fold_dir in folds.items():
        predictions = pipeline_env["nnUNet_results"].parent / f"predictions_{trainer}"
        run_cli("nnUNetv2_predict", "-i", raw / "imagesTs", "-o", predictions, "-d", dataset, "-c", "3d_small",
                "-f", "0", "-tr", trainer, "-p", PLANS, "-device", "cpu", "-npp", "1", "-nps", "1")
        run_cli("nnUNetv2_evaluate_folder", raw / "labelsTs", predictions, "-djfile", predictions / "dataset.json",
                "-pfile", predictions / "plans.json", "-o", predictions / "summary.json", "-np", "1")
        dice = json.loads((predictions / "summary.json").read_text())["mean"]["1"]["Dice"]
        assert 0.0 <= dice <= 1.0, trainer
