"""Faults and bad input, driven as a user meets them: each command runs as a subprocess, and each test checks the exit
status, the one-line message (no traceback) and that nothing is left behind (no dataset, no temporary folder)."""
from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from conftest import BIN_DIR, PIPELINE_DATASET, PIPELINE_DATASET_ID, run_cli
from test_convert import read, write_inputs

CONVERT = str(BIN_DIR / "paseg_convert")


def convert_args(dirs: dict[str, Path], dataset_id: int, name: str = "Rel", *extra: str) -> list[str]:
    return ["-i", str(dirs["images"]), "-a", str(dirs["clicks"]), "-d", str(dataset_id), "-n", name,
            "--device", "cpu", *extra]


def one_line_error(proc: subprocess.CompletedProcess, status: int) -> str:
    """The last line of stderr, after checking the status and that no traceback was printed."""
    assert proc.returncode == status, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stderr.replace("\r", "\n").strip().splitlines()[-1]


def raw_contents(nnunet_env: dict[str, Path]) -> list[str]:
    return sorted(p.name for p in nnunet_env["nnUNet_raw"].iterdir())


def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------------------------- options


@pytest.mark.parametrize("option, message", [
    (["--method", "grabcut"], "argument --method: unknown pseudo-label method 'grabcut'; choose one of geodesic, "
                              "refined, extremes"),
    (["--lambda", "2"], "argument --lambda: lambda must be in [0, 1], got 2.0"),
    (["--lambda", "nan"], "argument --lambda: lambda must be in [0, 1], got nan"),
    (["--threshold", "0"], "argument --threshold: threshold must be in (0, 1), got 0.0"),
    (["-np", "0"], "argument -np: must be at least 1, got 0"),
    (["-np", "-3"], "argument -np: must be at least 1, got -3"),
    (["--device", "foo"], "argument --device: 'foo' is not a device FastGeodis runs on; available here: cpu"),
])
def test_options_are_checked_before_any_work(nnunet_env, tmp_path, option, message):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    args = convert_args(dirs, 30)
    args = args[:-2] + option if option[0] == "--device" else args + option
    proc = subprocess.run([CONVERT, *args], capture_output=True, text=True)
    assert one_line_error(proc, 2) == f"paseg_convert: error: {message}"
    assert raw_contents(nnunet_env) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_cuda_without_cuda_says_what_is_available(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    proc = subprocess.run([CONVERT, *convert_args(dirs, 31)[:-2], "--device", "cuda"], capture_output=True,
                          text=True)
    why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA device found"
    assert one_line_error(proc, 2) == ("paseg_convert: error: argument --device: 'cuda': CUDA is not available on "
                                       f"this machine ({why}); available here: cpu")


# ------------------------------------------------------------------------------------ signals and faults


# Cases of the conversions interrupted below: enough that one is still running when the test, woken from its polling
# on a loaded machine, sends its signal (8 cases took 0.3 s and were sometimes all done by then).
INTERRUPTED_CASES = 48


def _wait_for_labelling(raw: Path, proc: subprocess.Popen) -> None:
    """Until the conversion has written its first pseudo-label into its temporary folder."""
    deadline = time.monotonic() + 300
    while not any(raw.glob(".Dataset*.partial-*/labelsTr/*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)


@pytest.mark.parametrize("sig, status, said", [(signal.SIGTERM, 143, "stopped by SIGTERM"),
                                               (signal.SIGINT, 130, "stopped by Ctrl-C (SIGINT)")])
def test_signal_to_the_process_group_removes_the_temporary_folder(nnunet_env, tmp_path, sig, status, said):
    """``timeout``, batch schedulers and Ctrl-C signal the whole process group: the workers as well."""
    dirs = write_inputs(tmp_path / "in", n=INTERRUPTED_CASES, gt=False)
    # As from a terminal: a job started in the background by a non-interactive shell (``cmd &``, as CI runners may)
    # inherits SIGINT ignored, and Python then never installs its Ctrl-C handler.
    proc = subprocess.Popen([CONVERT, *convert_args(dirs, 32), "-np", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_labelling(nnunet_env["nnUNet_raw"], proc)
    os.killpg(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert one_line_error(subprocess.CompletedProcess([], proc.returncode, stdout, stderr), status) == \
        f"paseg_convert: {said}; nothing was written"
    assert raw_contents(nnunet_env) == []


def test_sigterm_to_the_main_process_in_process_conversion(nnunet_env, tmp_path):
    """``kill PID``: only the main process gets it, here while it labels in-process (-np 1)."""
    dirs = write_inputs(tmp_path / "in", n=INTERRUPTED_CASES, gt=False)
    proc = subprocess.Popen([CONVERT, *convert_args(dirs, 33)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    _wait_for_labelling(nnunet_env["nnUNet_raw"], proc)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert one_line_error(subprocess.CompletedProcess([], proc.returncode, stdout, stderr), 143) == \
        "paseg_convert: stopped by SIGTERM; nothing was written"
    assert raw_contents(nnunet_env) == []


def test_killed_worker_is_one_line_and_leaves_nothing(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=INTERRUPTED_CASES, gt=False)
    proc = subprocess.Popen([CONVERT, *convert_args(dirs, 34), "-np", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_labelling(nnunet_env["nnUNet_raw"], proc)
    worker = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    line = one_line_error(subprocess.CompletedProcess([], proc.returncode, stdout, stderr), 1)
    assert line.startswith("paseg_convert: error: a worker process died (killed by a signal, or by the system for "
                           "lack of memory) before case(s) ")
    listed = line.split("before case(s) ")[1].split(" were converted")[0]
    assert len(listed.split(" and ")[0].split(", ")) <= 5, "at most 5 cases by name, then 'and N more'"
    assert raw_contents(nnunet_env) == []


def test_stale_temporary_folders_are_cleaned_up(nnunet_env, tmp_path):
    """Folders that a killed (SIGKILL) conversion of the same id left behind: a partial dataset is removed, an old
    dataset moved aside by an unfinished replacement is put back (and then replaced, with --overwrite); those of a
    running conversion, and of other ids, are left alone."""
    raw = nnunet_env["nnUNet_raw"]
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    stale = [raw / f".Dataset035_Rel.partial-{dead_pid()}-0a1b2c3d", raw / ".Dataset035_Rel.partial-4e5f6a7b"]
    running = raw / f".Dataset035_Rel.partial-{os.getpid()}-8c9d0e1f"
    other_id = raw / f".Dataset036_Rel.partial-{dead_pid()}-2a3b4c5d"
    moved_aside = raw / f".Dataset035_Old.replaced-{dead_pid()}-6e7f8a9b"
    for folder in (*stale, running, other_id):
        (folder / "labelsTr").mkdir(parents=True)
        (folder / "labelsTr" / "case0.nii.gz").write_bytes(b"half-written")
    (moved_aside / "Dataset035_Old" / "imagesTr").mkdir(parents=True)
    proc = run_cli("paseg_convert", *convert_args(dirs, 35, "Rel", "--overwrite"))
    for folder in stale:
        assert f"removed {folder}, left behind by an interrupted conversion" in proc.stdout
    assert f"restored {raw / 'Dataset035_Old'} from {moved_aside}" in proc.stdout
    assert f"{running} belongs to a conversion that is still running (process {os.getpid()}); left alone" \
        in proc.stdout
    assert raw_contents(nnunet_env) == sorted(["Dataset035_Rel", running.name, other_id.name])


def _no_dac_override() -> None:
    """In the child: drop root's power to write where the permission bits say no (CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH leave the bounding set, so the command runs without them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _small_file_size_limit() -> None:
    """In the child: files may not grow beyond 4 KiB (a write past it fails with EFBIG, as a full disk fails with
    ENOSPC), which the first copied image exceeds."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_unwritable_nnunet_raw_is_one_line(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=2, gt=False)
    raw = nnunet_env["nnUNet_raw"]
    raw.chmod(0o555)
    try:
        proc = subprocess.run([CONVERT, *convert_args(dirs, 37)], capture_output=True, text=True,
                              preexec_fn=_no_dac_override if os.geteuid() == 0 else None)
    finally:
        raw.chmod(0o755)
    assert one_line_error(proc, 1) == f"paseg_convert: error: could not create a folder in {raw}: Permission denied"
    assert raw_contents(nnunet_env) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_failed_write_names_the_file_and_leaves_nothing(nnunet_env, tmp_path, workers):
    dirs = write_inputs(tmp_path / "in", n=2, gt=False)
    proc = subprocess.run([CONVERT, *convert_args(dirs, 38), "-np", workers], capture_output=True, text=True,
                          preexec_fn=_small_file_size_limit)
    line = one_line_error(proc, 1)
    assert line.startswith(f"paseg_convert: error: could not write {nnunet_env['nnUNet_raw']}/.Dataset038_Rel.partial-")
    assert line.endswith("/imagesTr/case0_0000.nii.gz: File too large") or \
        line.endswith("/imagesTr/case1_0000.nii.gz: File too large"), line
    assert raw_contents(nnunet_env) == []


# ------------------------------------------------------------------------------------------ wrong labels


def _rewrite_image(path: Path, change) -> None:
    image, array = read(path)
    out = sitk.GetImageFromArray(change(array))
    out.CopyInformation(image)
    sitk.WriteImage(out, str(path))


@pytest.mark.parametrize("method", ["geodesic", "refined"])
def test_object_at_the_image_minimum_keeps_its_foreground(nnunet_env, tmp_path, method):
    """CT air, a clamped image: the object's voxels are at the image minimum, like the empty background."""
    dirs = write_inputs(tmp_path / "in", n=2, ct=True)
    mask = read(dirs["gt"] / "case1.nii.gz")[1] > 0
    _rewrite_image(dirs["images"] / "case1_0000.nii.gz", lambda a: np.where(mask, a.min(), a))
    run_cli("paseg_convert", *convert_args(dirs, 40, "Air", "--gt", str(dirs["gt"]), "--method", method))
    out = nnunet_env["nnUNet_raw"] / "Dataset040_Air"
    report = json.loads((out / "pseudo_label_quality.json").read_text())
    assert report["cases"]["case1"]["fg_recall"] > 0.5 and report["cases"]["case1"]["fg_precision"] > 0.95
    assert report["little_foreground"] == []


def test_constant_image_is_a_problem_not_an_empty_label(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=2, gt=False)
    _rewrite_image(dirs["images"] / "case1_0000.nii.gz", lambda a: np.zeros_like(a))
    proc = subprocess.run([CONVERT, *convert_args(dirs, 41)], capture_output=True, text=True)
    assert one_line_error(proc, 1) == \
        f"  case case1: {dirs['images'] / 'case1_0000.nii.gz'}: every voxel is 0; a constant image has nothing to " \
        "segment"
    assert raw_contents(nnunet_env) == []


def test_objects_without_pseudo_foreground_are_reported(nnunet_env, tmp_path):
    """A geodesic threshold so strict that only the clicked voxel is foreground: every object is reported by name,
    in the summary and in the report (written without --gt too), and the status is 3 unless the user allows it."""
    dirs = write_inputs(tmp_path / "in", n=2, gt=False)
    strict = ("--method", "geodesic", "--threshold", "0.001")  # the other methods grow the clicked voxel
    proc = run_cli("paseg_convert", *convert_args(dirs, 42, "Strict", *strict), check=False)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr
    out = nnunet_env["nnUNet_raw"] / "Dataset042_Strict"
    assert f"paseg_convert: wrote {out}, but 2 object(s) have fewer than 5 pseudo-foreground voxels" in proc.stderr
    assert "Check them; --allow_empty_foreground accepts them." in proc.stderr
    assert "case case0: object 1 (class 1): 1 foreground voxel(s)" in proc.stderr
    assert "case case1: object 1 (class 1): 1 foreground voxel(s)" in proc.stderr
    report = json.loads((out / "pseudo_label_quality.json").read_text())
    assert report["little_foreground"] == [{"case": f"case{i}", "object": 1, "class": 1, "foreground_voxels": 1}
                                           for i in range(2)]
    assert report["cases"]["case0"]["foreground_voxels"] == [1] and "summary" not in report

    allowed = run_cli("paseg_convert", *convert_args(dirs, 42, "Strict", *strict, "--overwrite",
                                                     "--allow_empty_foreground"))
    assert "2 object(s) with fewer than 5 pseudo-foreground voxels (allowed)" in allowed.stdout


# ------------------------------------------------------------------------------------------- dataset ids


@pytest.mark.parametrize("where", ["nnUNet_preprocessed", "nnUNet_results"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_dataset_id_is_checked_in_every_nnunet_folder(nnunet_env, tmp_path, where, overwrite):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    taken = nnunet_env[where] / "Dataset043_Other"
    taken.mkdir()
    proc = subprocess.run([CONVERT, *convert_args(dirs, 43, "New", *["--overwrite"] * overwrite)],
                          capture_output=True, text=True)
    assert one_line_error(proc, 1) == (
        f"paseg_convert: error: dataset id 43 is already used under another name than Dataset043_New: {taken} "
        f"({where}); nnU-Net needs one name per id: use that name, another id, or remove the folder")
    assert raw_contents(nnunet_env) == []


def test_existing_dataset_message_names_the_flag(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    (nnunet_env["nnUNet_raw"] / "Dataset044_Old").mkdir()
    proc = subprocess.run([CONVERT, *convert_args(dirs, 44, "New")], capture_output=True, text=True)
    assert one_line_error(proc, 1) == (f"paseg_convert: error: dataset id 44 already exists: "
                                       f"{nnunet_env['nnUNet_raw'] / 'Dataset044_Old'} (--overwrite replaces it)")


# ------------------------------------------------------------------------------------------ input messages


def test_corrupt_image_says_it_could_not_be_read(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=2, gt=False)
    (dirs["images"] / "case0_0000.nii.gz").write_bytes(b"not an image")
    proc = subprocess.run([CONVERT, *convert_args(dirs, 45)], capture_output=True, text=True)
    assert one_line_error(proc, 1) == (f"  case case0: could not read {dirs['images'] / 'case0_0000.nii.gz'}: "
                                       "no image reader recognises it (not an image file, or a damaged one)")


def test_truncated_nifti_is_not_read_as_zeros(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=2, gt=False)
    path = dirs["images"] / "case1_0000.nii.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    proc = subprocess.run([CONVERT, *convert_args(dirs, 46)], capture_output=True, text=True)
    assert one_line_error(proc, 1).startswith(f"  case case1: could not read {path}: its compressed data is cut "
                                              "short or damaged")


def test_image_folder_given_a_file(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=1, gt=False)
    image = dirs["images"] / "case0_0000.nii.gz"
    proc = subprocess.run([CONVERT, *convert_args({**dirs, "images": image}, 47)], capture_output=True, text=True)
    one_line_error(proc, 1)
    assert f"image folder {image} is a file, not a folder" in proc.stderr


def test_folder_and_case_problems_are_reported_together(nnunet_env, tmp_path):
    dirs = write_inputs(tmp_path / "in", n=3, gt=False)
    (dirs["images"] / "notes.txt").write_text("scan notes")  # a folder-level problem
    (dirs["clicks"] / "case2.nii.gz").write_bytes(b"garbage")  # a per-case problem, found by reading the case
    proc = subprocess.run([CONVERT, *convert_args(dirs, 48)], capture_output=True, text=True)
    one_line_error(proc, 1)
    assert "paseg_convert: error: 2 problem(s) found, nothing was written:" in proc.stderr
    assert f"{dirs['images'] / 'notes.txt'}: not an image named CASE_XXXX.ext" in proc.stderr
    assert f"case case2: could not read {dirs['clicks'] / 'case2.nii.gz'}" in proc.stderr
    assert raw_contents(nnunet_env) == []


# ------------------------------------------------------------------------------------------- other tools


@pytest.mark.usefixtures("this_tree")
def test_simulate_points_bad_masks_and_output(tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((8, 9, 10), np.uint8)), str(masks / "empty.nii.gz"))
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((9, 10), np.uint8)), str(masks / "flat.nii.gz"))
    out = tmp_path / "clicks"
    proc = run_cli("paseg_simulate_points", "-i", masks, "-o", out, "-np", "2", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "paseg_simulate_points: 2 problem(s), nothing was written:" in proc.stderr
    assert f"{masks / 'empty.nii.gz'}: no object of at least 10 voxels (the mask is empty)" in proc.stderr
    assert f"{masks / 'flat.nii.gz'}: expected a 3D integer label mask, got uint8 of shape (9, 10)" in proc.stderr
    assert not out.exists()

    (masks / "flat.nii.gz").unlink()
    (masks / "empty.nii.gz").unlink()
    sitk.WriteImage(sitk.GetImageFromArray(np.pad(np.ones((4, 4, 4), np.uint8), 3)), str(masks / "cube.nii.gz"))
    existing = tmp_path / "a_file"
    existing.write_text("")
    proc = run_cli("paseg_simulate_points", "-i", masks, "-o", existing, check=False)
    assert one_line_error(proc, 2) == f"paseg_simulate_points: error: -o {existing} is a file; give a folder for the " \
                                      "click files"


def test_add_small_plans_unknown_dataset(nnunet_env):
    proc = run_cli("paseg_add_small_plans", "-d", "999", check=False)
    assert one_line_error(proc, 1).startswith("paseg_add_small_plans: dataset 999: Could not find a dataset with "
                                              "the ID 999.")


# ------------------------------------------------------------------------------------------------ trainers


def _checkpoint_of(trainer_class: type, path: Path, configuration: str = "3d_small",
                   labels: dict | None = None) -> Path:
    """A real checkpoint (untrained) of ``trainer_class`` on the shared dataset, saved by the trainer itself."""
    preprocessed = Path(os.environ["nnUNet_preprocessed"]) / PIPELINE_DATASET
    plans = {**json.loads((preprocessed / "nnUNetPlans.json").read_text()), "continue_training": False}
    dataset_json = json.loads((preprocessed / "dataset.json").read_text())
    if labels is not None:
        dataset_json["labels"] = labels
    trainer = trainer_class(plans, configuration, 0, dataset_json, device=torch.device("cpu"))
    trainer.initialize()
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(str(path))
    return path


def _truncated(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def _train(trainer: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("nnUNetv2_train", PIPELINE_DATASET_ID, "3d_small", "0", "-tr", trainer, "-device", "cpu", *extra,
                   env=env, check=False)


THIS_RUN = (f"this run uses dataset {PIPELINE_DATASET}, plans nnUNetPlans, configuration 3d_small, labels "
            "['background', 'foreground', 'ignore']")


@pytest.mark.parametrize("problem", ["architecture", "configuration", "classes", "truncated"])
def test_scm_stage1_checkpoint_that_does_not_fit(pipeline_env, tmp_path, problem):
    from nnunetv2_paseg import nnUNetTrainerPASeg, nnUNetTrainerPASegAux

    path = tmp_path / "stage1" / "checkpoint_final.pth"
    if problem == "architecture":
        _checkpoint_of(nnUNetTrainerPASegAux, path)
    elif problem == "configuration":
        _checkpoint_of(nnUNetTrainerPASeg, path, configuration="3d_fullres")
    elif problem == "classes":
        _checkpoint_of(nnUNetTrainerPASeg, path, labels={"background": 0, "foreground": 1, "other": 2, "ignore": 3})
    else:
        _truncated(_checkpoint_of(nnUNetTrainerPASeg, path))
    proc = _train("nnUNetTrainerSCM_scmtest", env={"PASEG_PRIMARY_WEIGHTS": str(path),
                                                   "PASEG_AUX_WEIGHTS": str(path)})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    if problem == "truncated":
        assert f"could not read the stage-1 checkpoint of the primary network {path}" in last
        assert "It is cut short (a run killed while saving it?) or not a PyTorch checkpoint" in last
        return
    assert f"{path} (trainer nnUNetTrainerPASeg" in last and "does not fit the primary network (PlainConvUNet)" in last
    assert THIS_RUN in last
    if problem == "architecture":
        assert "missing" in last and "configuration 3d_small" in last
    elif problem == "configuration":
        assert "with the wrong shape" in last and "configuration 3d_fullres" in last
    else:
        assert re.search(r"decoder\.seg_layers\.0\.weight \(3, (\d+), 1, 1, 1\) in the file, \(2, \1, 1, 1, 1\) here",
                         last), last
        assert "labels ['background', 'foreground', 'other', 'ignore']" in last


@pytest.mark.parametrize("problem", ["truncated", "configuration"])
def test_continue_from_a_checkpoint_that_does_not_fit(pipeline_env, problem):
    from nnunetv2_paseg import nnUNetTrainerPASeg

    fold = pipeline_env["nnUNet_results"] / PIPELINE_DATASET / "nnUNetTrainerPASeg_test__nnUNetPlans__3d_small" / \
        "fold_0"
    latest = fold / "checkpoint_latest.pth"
    if problem == "truncated":
        _truncated(_checkpoint_of(nnUNetTrainerPASeg, latest))
    else:
        _checkpoint_of(nnUNetTrainerPASeg, latest, configuration="3d_fullres")
    proc = _train("nnUNetTrainerPASeg_test", "--c")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    if problem == "truncated":
        assert f"could not read checkpoint {latest}" in last and "cut short" in last
    else:
        assert f"checkpoint {latest} (trainer nnUNetTrainerPASeg) does not fit the network (PlainConvUNet)" in last
        assert "configuration 3d_fullres" in last and THIS_RUN in last
