"""Stage 2 of PA-Seg (Zhai et al., IEEE TMI 2023, arXiv 2208.05669): nnUNetTrainerSCM, Self and Cross Monitoring of
two networks."""
from __future__ import annotations

import os
from copy import deepcopy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import autocast, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
from nnunetv2.utilities.collate_outputs import collate_outputs
from nnunetv2.utilities.helpers import dummy_context
from nnunetv2_paseg.losses.distillation import cross_distillation_loss
from nnunetv2_paseg.trainers.checkpoints import (CheckpointError, SafeCheckpoints, checked_checkpoint, fitting_weights,
                                                 read_checkpoint, unwrap)
from nnunetv2_paseg.trainers.optim import optimizer_step
from nnunetv2_paseg.trainers.paseg_aux import nnUNetTrainerPASegAux
from nnunetv2_paseg.trainers.progress_logger import LossComponentsLogger, mean_over_ranks

try:
    from torch import GradScaler

    def _cuda_grad_scaler() -> GradScaler:
        return GradScaler("cuda")
except ImportError:  # torch < 2.3
    from torch.cuda.amp import GradScaler

    def _cuda_grad_scaler() -> GradScaler:
        return GradScaler()

PRIMARY_WEIGHTS_ENV = "PASEG_PRIMARY_WEIGHTS"
AUX_WEIGHTS_ENV = "PASEG_AUX_WEIGHTS"


def is_refresh_epoch(epoch: int, num_epochs: int, fraction: float) -> bool:
    """Whether the snapshots are refreshed at the start of ``epoch`` (0-based): every ``fraction`` of
    ``num_epochs`` (rounded, at least 1), never at epoch 0 (they start as the stage-1 networks).
    E.g. 100 epochs, 0.2: epochs 20, 40, 60, 80."""
    period = max(1, round(fraction * num_epochs))
    return epoch > 0 and epoch % period == 0


def frozen_copy(network: nn.Module) -> nn.Module:
    """A copy of ``network`` (unwrapped) in eval mode that takes no gradients: a snapshot."""
    snapshot = deepcopy(unwrap(network))
    snapshot.eval()
    snapshot.requires_grad_(False)
    return snapshot


def refresh_snapshot(snapshot: nn.Module, network: nn.Module) -> None:
    """Copy ``network``'s current weights into ``snapshot`` (in place; the snapshot stays frozen)."""
    unwrap(snapshot).load_state_dict(unwrap(network).state_dict())


@torch.no_grad()
def ema_update(snapshot: nn.Module, network: nn.Module, decay: float) -> None:
    """snapshot <- decay * snapshot + (1 - decay) * network, parameter by parameter (in place); buffers copied."""
    source = unwrap(network)
    for ema, current in zip(unwrap(snapshot).parameters(), source.parameters()):
        ema.lerp_(current.detach(), 1.0 - decay)
    for ema, current in zip(unwrap(snapshot).buffers(), source.buffers()):
        ema.copy_(current)


def hard_pseudo_labels(teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
                       ignore_label: int | None = None) -> torch.Tensor:
    """argmax of a snapshot's logits; where ``labels`` is given, its labelled (not ``ignore_label``) voxels win.

    Args:
        teacher_logits: (N, C, *spatial) snapshot logits.
        labels: None, or (N, 1, *spatial) nnU-Net target of the same patch (0..K, ``ignore_label`` where unlabelled).
        ignore_label: the dataset's ignore label; None means every voxel of ``labels`` is labelled.

    Returns:
        (N, 1, *spatial) labels in 0..C-1 (dtype of ``labels``, else int64).
    """
    # max(...).indices: the same labels, ~10x faster than argmax over the channel axis on CPU
    pseudo = teacher_logits.max(1, keepdim=True).indices
    if labels is None:
        return pseudo
    if ignore_label is None:
        return labels.clone()
    return torch.where(labels == ignore_label, pseudo.to(labels.dtype), labels)


def ensemble_teacher(*teacher_logits: torch.Tensor) -> torch.Tensor:
    """The snapshots' ensemble: the mean of their softmax, (N, C, *spatial) probabilities in [0, 1] (its argmax is the
    ensemble's hard label, as nnUNetv2_ensemble decides). Where the snapshots disagree, the more confident one wins.

    Example:
        >>> a, b = torch.tensor([[[4.0], [0.0]]]), torch.tensor([[[0.0], [1.0]]])  # (1, 2, 1): A sure, B unsure
        >>> ensemble_teacher(a, b).argmax(1).tolist()
        [[0]]
    """
    if not teacher_logits or any(t.shape != teacher_logits[0].shape for t in teacher_logits):
        raise ValueError(f"ensemble_teacher: needs logits of one shape, got {[tuple(t.shape) for t in teacher_logits]}")
    return torch.stack([t.float().softmax(1) for t in teacher_logits]).mean(0)


def downsample_like(seg: torch.Tensor, targets: list[torch.Tensor]) -> list[torch.Tensor]:
    """``seg`` (N, 1, *spatial) at the shape of each deep-supervision target, with nnU-Net's own rule
    (``DownsampleSegForDSTransform``: nearest-exact interpolation)."""
    seg_float = seg.float()
    return [seg if t.shape[2:] == seg.shape[2:] else
            F.interpolate(seg_float, size=t.shape[2:], mode="nearest-exact").to(seg.dtype) for t in targets]


def stage1_checkpoint(role: str, env_var: str, trainer_name: str, dataset_name: str, plans_name: str,
                      configuration: str, fold: int | str) -> Path:
    """Where the stage-1 weights of one SCM network are: ``$env_var`` if set, else nnU-Net's results folder
    ``$nnUNet_results/{dataset}/{trainer}__{plans}__{configuration}/fold_{fold}/checkpoint_final.pth`` or, if
    training has not finished, ``checkpoint_best.pth`` there.

    Raises:
        FileNotFoundError: naming every path looked at and how to point to the right file.
    """
    explicit = os.environ.get(env_var)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"nnUNetTrainerSCM: {env_var}={explicit} (stage-1 weights of the {role} network) "
                                    f"is not a file")
        return path
    results = os.environ.get("nnUNet_results")
    if not results:
        raise FileNotFoundError(f"nnUNetTrainerSCM: cannot find the stage-1 weights of the {role} network: neither "
                                f"{env_var} nor nnUNet_results is set")
    fold_dir = Path(results) / dataset_name / f"{trainer_name}__{plans_name}__{configuration}" / f"fold_{fold}"
    candidates = [fold_dir / "checkpoint_final.pth", fold_dir / "checkpoint_best.pth"]
    for path in candidates:
        if path.is_file():
            return path
    looked = "\n  ".join(map(str, candidates))
    raise FileNotFoundError(f"nnUNetTrainerSCM: no stage-1 checkpoint of the {role} network ({trainer_name}); "
                            f"looked for\n  {looked}\nTrain it first (nnUNetv2_train {dataset_name} {configuration} "
                            f"{fold} -tr {trainer_name} -p {plans_name}) or set {env_var} to a checkpoint file.")


def load_full_network(network: nn.Module, path: Path, role: str, this_run: dict | None = None) -> None:
    """Load all weights (segmentation heads included) of an nnU-Net checkpoint into ``network``.

    Raises:
        CheckpointError (a ValueError): the file cannot be read, is not an nnU-Net checkpoint, or does not fit the
            network (the keys and shapes that differ, and the dataset, plans, configuration and labels of the
            file's run beside ``this_run``'s, the SCM trainer's init arguments).
    """
    checkpoint = read_checkpoint(path, "cpu", f"the stage-1 checkpoint of the {role} network")
    unwrap(network).load_state_dict(fitting_weights(checkpoint, unwrap(network), str(path), this_run,
                                                    role=f"{role} network"))


class nnUNetTrainerSCM(SafeCheckpoints, nnUNetTrainer):
    """Stage 2 of PA-Seg, Self and Cross Monitoring (SCM: self-training plus cross knowledge distillation, CKD) of a
    primary network A (the plans' architecture, as nnUNetTrainerPASeg) and an auxiliary network B (the other U-Net
    family, as nnUNetTrainerPASegAux).

    The defaults monitor A with both stage-1 networks at once: A learns the label of the stage-1 ensemble, the mean
    softmax of the PASeg model and of an auxiliary model trained with the partial loss alone
    (``aux_stage1_trainer`` nnUNetTrainerPASegAux_pCE), kept fixed for all of stage 2 (``teacher = "frozen"``,
    ``self_training_target = "ensemble"``, ``w_kd = 0``). PASeg ends about one voxel inside the objects' surface and
    the partial loss about one voxel outside, so their average lies between, and a network that learns it is more
    accurate than either (docs/experiments.md). The paper's configuration (refreshed snapshots, each network on its
    own, cross distillation) is ``nnUNetTrainerSCM_crossKD``. In general:

    Both start from their complete stage-1 networks (segmentation heads included, unlike ``-pretrained_weights``,
    which SCM's stage-1 initialisation supersedes): by default the checkpoints of ``primary_stage1_trainer`` and
    ``aux_stage1_trainer`` for the same dataset, plans, configuration and fold (``stage1_checkpoint``); the
    environment variables ``PASEG_PRIMARY_WEIGHTS`` / ``PASEG_AUX_WEIGHTS`` (checkpoint files) override, e.g. for
    stage-1 models of the epoch variants. ``--c`` continues from SCM's own checkpoint instead. Frozen snapshots A', B'
    see each augmented patch x with the networks; with y the dataset's (partial) label of the patch:

        L_A = (1 - w_kd) * L_DC+CE(A(x), argmax A'(x) | y) + w_kd * T^2 KL(softmax(B'(x)/T) || softmax(A(x)/T))
        L_B = (1 - w_kd) * L_DC+CE(B(x), argmax B'(x) | y) + w_kd * T^2 KL(softmax(A'(x)/T) || softmax(B(x)/T))

    ``argmax A'(x) | y``: the snapshot's hard label where y is ``ignore``, y where the clicks labelled the voxel
    (``keep_labelled_voxels``; the reference used the snapshot's label everywhere, which lets self-training drift
    away from the click evidence). The hard labels are downsampled for each deep-supervision output like nnU-Net's
    targets; the distillation term (``cross_distillation_loss``) uses the full-resolution output. Each network has
    its own SGD optimiser, PolyLR schedule and AMP GradScaler (the losses share no gradients, so one network's
    overflow must not shrink the other's loss scale).

    Snapshots (``teacher``): "refresh" copies the networks' current weights at the start of every
    ``snapshot_fraction`` of the epochs (``is_refresh_epoch``); "ema" makes each snapshot an exponential moving
    average of its network's weights, updated after every step with a time constant of the same length
    (``ema_decay``), so a teacher never jumps to the weights of one noisy step; "frozen" keeps the stage-1
    networks as the snapshots throughout (distillation of stage 1, which two co-adapting networks cannot drift from;
    B is then not trained, ``trains_aux``). The reference refreshed from each
    network's best-validation weights (Dice against full labels, which a click-only user does not have);
    nnU-Net's pseudo Dice is measured against the same partial labels the stage-1 networks were fit to, so "best"
    would tend to pin the snapshots to the stage-1 weights.

    ``self_training_target``: "own" (above, the reference) or "ensemble": both networks self-train on the hard
    label of the snapshots' mean softmax (``ensemble_teacher``), ``argmax (softmax A'(x) + softmax B'(x)) / 2 | y``;
    with two stage-1 networks that err on opposite sides of the boundary, their ensemble is nearer to it than
    either.

    The auxiliary network's architecture is that of ``aux_architecture`` (a trainer class with
    ``build_network_architecture``); its stage-1 weights come from ``aux_stage1_trainer``.

    Only A is validated, saved as ``network_weights`` and used by nnUNetv2_predict; B, its optimiser and scaler
    and both snapshots are stored beside it in the checkpoint (``scm_*`` keys), so ``--c`` restores all of them.
    """

    primary_stage1_trainer = "nnUNetTrainerPASeg"
    aux_stage1_trainer = "nnUNetTrainerPASegAux_pCE"
    aux_architecture: type = nnUNetTrainerPASegAux
    w_kd = 0.0
    kd_temperature = 4.0
    snapshot_fraction = 0.2
    teacher = "frozen"
    keep_labelled_voxels = True
    self_training_target = "ensemble"

    @property
    def trains_aux(self) -> bool:
        """Whether B learns in stage 2: only a refreshed or moving-average snapshot carries B's progress to A; with
        frozen snapshots A sees only B's stage-1 weights, so training B would cost a second network's steps for
        nothing."""
        return self.teacher != "frozen"

    @property
    def loss_parts(self) -> tuple[str, ...]:
        return ("primary_self", "primary_ckd") + (("aux_self", "aux_ckd", "aux_total") if self.trains_aux else ())

    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.aux_network = self.aux_optimizer = self.aux_lr_scheduler = None  # -> initialize
        self.snapshot_primary = self.snapshot_aux = None  # -> initialize
        self.aux_grad_scaler = _cuda_grad_scaler() if self.device.type == "cuda" else None
        self._resumed = False  # set by load_checkpoint: --c must not go back to the stage-1 weights
        self.logger.local_logger = LossComponentsLogger([f"train_{part}" for part in self.loss_parts],
                                                        ["snapshot_agreement"])

    def initialize(self):
        if self.label_manager.has_regions:
            raise ValueError(f"{type(self).__name__}: region-based training is not supported (hard pseudo-labels "
                             f"need mutually exclusive classes)")
        super().initialize()
        if self.teacher not in ("refresh", "ema", "frozen"):
            raise ValueError(f"{type(self).__name__}: teacher must be 'refresh', 'ema' or 'frozen', got "
                             f"{self.teacher!r}")
        if self.self_training_target not in ("own", "ensemble"):
            raise ValueError(f"{type(self).__name__}: self_training_target must be 'own' or 'ensemble', got "
                             f"{self.self_training_target!r}")
        self.aux_network = self.aux_architecture.build_network_architecture(
            self.plans_manager, self.configuration_manager, self.num_input_channels,
            self.label_manager.num_segmentation_heads, self.enable_deep_supervision).to(self.device)
        name, kwargs = self.aux_architecture.architecture(self.configuration_manager)
        self.print_to_log_file(f"primary network: the plans' architecture; auxiliary network built: {name} {kwargs}")
        self.snapshot_primary = frozen_copy(self.network)
        self.snapshot_aux = frozen_copy(self.aux_network)
        # Snapshots only give full-resolution labels; without deep supervision they skip the low-res heads.
        self.snapshot_primary.decoder.deep_supervision = False
        self.snapshot_aux.decoder.deep_supervision = False
        if self._do_i_compile():
            self.aux_network = torch.compile(self.aux_network)
            self.snapshot_primary = torch.compile(self.snapshot_primary)
            self.snapshot_aux = torch.compile(self.snapshot_aux)
        # nnUNetTrainer.configure_optimizers, for B
        self.aux_optimizer = torch.optim.SGD(self.aux_network.parameters(), self.initial_lr,
                                             weight_decay=self.weight_decay, momentum=0.99, nesterov=True)
        self.aux_lr_scheduler = PolyLRScheduler(self.aux_optimizer, self.initial_lr, self.num_epochs)
        if self.is_ddp:
            self.aux_network = DDP(nn.SyncBatchNorm.convert_sync_batchnorm(self.aux_network),
                                   device_ids=[self.local_rank])

    def initialize_from_stage1(self) -> None:
        """Load the complete stage-1 networks into A and B and make them the snapshots."""
        for role, env_var, trainer_name, network in (
                ("primary", PRIMARY_WEIGHTS_ENV, self.primary_stage1_trainer, self.network),
                ("auxiliary", AUX_WEIGHTS_ENV, self.aux_stage1_trainer, self.aux_network)):
            path = stage1_checkpoint(role, env_var, trainer_name, self.plans_manager.dataset_name,
                                     self.plans_manager.plans_name, self.configuration_name, self.fold)
            load_full_network(network, path, role, self.my_init_kwargs)
            self.print_to_log_file(f"{role} network initialised from stage-1 checkpoint {path}")
        refresh_snapshot(self.snapshot_primary, self.network)
        refresh_snapshot(self.snapshot_aux, self.aux_network)

    def on_train_start(self):
        super().on_train_start()
        if not self._resumed:
            self.initialize_from_stage1()

    def on_train_epoch_start(self):
        super().on_train_epoch_start()
        self.aux_network.train()
        self.aux_lr_scheduler.step(self.current_epoch)
        if self.teacher == "refresh" and is_refresh_epoch(self.current_epoch, self.num_epochs, self.snapshot_fraction):
            refresh_snapshot(self.snapshot_primary, self.network)
            refresh_snapshot(self.snapshot_aux, self.aux_network)
            self.print_to_log_file(f"snapshots refreshed from the current weights at epoch {self.current_epoch}")

    def ema_decay(self) -> float:
        """Per-step decay of the "ema" teacher: a time constant of ``snapshot_fraction`` of all training steps."""
        return 1.0 - 1.0 / max(1.0, self.snapshot_fraction * self.num_epochs * self.num_iterations_per_epoch)

    def _autocast(self):
        # as nnUNetTrainer.train_step: CUDA autocast only (slow on CPU, unsupported on MPS)
        return autocast(self.device.type, enabled=True) if self.device.type == "cuda" else dummy_context()

    def _self_training_targets(self, teacher_logits: torch.Tensor,
                               target: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        full = target[0] if isinstance(target, list) else target
        pseudo = hard_pseudo_labels(teacher_logits, full if self.keep_labelled_voxels else None,
                                    self.label_manager.ignore_label)
        return downsample_like(pseudo, target) if isinstance(target, list) else pseudo

    def self_training_targets(self, teacher_primary: torch.Tensor, teacher_aux: torch.Tensor,
                              target: torch.Tensor | list[torch.Tensor]) -> tuple:
        """(A's, B's) self-training targets from the snapshots' logits and the batch's (partial) target, as
        ``self_training_target`` says."""
        if self.self_training_target == "ensemble":
            shared = self._self_training_targets(ensemble_teacher(teacher_primary, teacher_aux), target)
            return shared, shared
        return (self._self_training_targets(teacher_primary, target),
                self._self_training_targets(teacher_aux, target))

    def _learn(self, network: nn.Module, optimizer: torch.optim.Optimizer, grad_scaler, data: torch.Tensor,
               targets, teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimiser step of ``network`` on ``(1 - w_kd) * L_self + w_kd * L_ckd``; returns the detached
        (total, self, ckd) losses."""
        optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            output = network(data)
            loss_self = self.loss(output, targets)
            full_res = output[0] if isinstance(output, (list, tuple)) else output
            loss_ckd = cross_distillation_loss(full_res, teacher_logits, self.kd_temperature)
            loss = (1 - self.w_kd) * loss_self + self.w_kd * loss_ckd
        optimizer_step(loss, network, optimizer, grad_scaler)
        return loss.detach(), loss_self.detach(), loss_ckd.detach()

    def train_step(self, batch: dict) -> dict:
        data = batch["data"].to(self.device, non_blocking=True)
        target = batch["target"]
        if isinstance(target, list):
            target = [i.to(self.device, non_blocking=True) for i in target]
        else:
            target = target.to(self.device, non_blocking=True)

        with torch.no_grad(), self._autocast():
            teacher_primary = self.snapshot_primary(data)
            teacher_aux = self.snapshot_aux(data)
        agreement = (hard_pseudo_labels(teacher_primary) == hard_pseudo_labels(teacher_aux)).float().mean()
        targets_a, targets_b = self.self_training_targets(teacher_primary, teacher_aux, target)
        # One network after the other: only one autograd graph is alive at a time.
        total_a, self_a, ckd_a = self._learn(self.network, self.optimizer, self.grad_scaler, data, targets_a,
                                             teacher_aux)
        values = {"loss": total_a, "primary_self": self_a, "primary_ckd": ckd_a, "snapshot_agreement": agreement}
        if self.trains_aux:
            values["aux_total"], values["aux_self"], values["aux_ckd"] = self._learn(
                self.aux_network, self.aux_optimizer, self.aux_grad_scaler, data, targets_b, teacher_primary)
        if self.teacher == "ema":
            ema_update(self.snapshot_primary, self.network, self.ema_decay())
            ema_update(self.snapshot_aux, self.aux_network, self.ema_decay())
        return {key: value.cpu().numpy() for key, value in values.items()}

    def on_train_epoch_end(self, train_outputs: list[dict]):
        super().on_train_epoch_end(train_outputs)
        outputs = collate_outputs(train_outputs)
        keys = self.loss_parts + ("snapshot_agreement",)
        means = mean_over_ranks({key: outputs[key] for key in keys})
        for part in self.loss_parts:
            self.logger.log(f"train_{part}", means[part], self.current_epoch)
        self.logger.log("snapshot_agreement", means["snapshot_agreement"], self.current_epoch)
        self.print_to_log_file(", ".join(f"train_{key} {means[key]:.4f}" for key in keys))

    def write_checkpoint(self, filename: str) -> None:
        """nnU-Net's checkpoint (A where nnU-Net expects the network) plus the scm_* keys: B, its optimiser and
        scaler, and both snapshots. Added to the file nnU-Net wrote rather than to a copy of its dict, which would
        have to follow every nnU-Net release."""
        super().write_checkpoint(filename)
        if not os.path.isfile(filename):  # not rank 0, or checkpointing disabled
            return
        # Read in full, not memory-mapped: the file is overwritten below.
        checkpoint = torch.load(filename, map_location="cpu", weights_only=False)
        checkpoint.update({
            "scm_aux_network_weights": unwrap(self.aux_network).state_dict(),
            "scm_aux_optimizer_state": self.aux_optimizer.state_dict(),
            "scm_aux_grad_scaler_state":
                self.aux_grad_scaler.state_dict() if self.aux_grad_scaler is not None else None,
            "scm_snapshot_primary_weights": unwrap(self.snapshot_primary).state_dict(),
            "scm_snapshot_aux_weights": unwrap(self.snapshot_aux).state_dict(),
        })
        torch.save(checkpoint, filename)

    def load_checkpoint(self, filename_or_checkpoint: dict | str) -> None:
        """nnU-Net's, plus B, its optimiser and scaler and both snapshots (``--c``). A file that cannot be read, is
        not an SCM checkpoint or does not fit this run's networks is a CheckpointError naming it
        (``checkpoints.checked_checkpoint``). ``--c`` without any checkpoint stays nnU-Net's: a warning, then a
        fresh start from the stage-1 networks."""
        checkpoint = checked_checkpoint(self, filename_or_checkpoint)
        name = filename_or_checkpoint if isinstance(filename_or_checkpoint, str) else "the checkpoint"
        missing = [key for key in ("scm_aux_network_weights", "scm_aux_optimizer_state",
                                   "scm_snapshot_primary_weights", "scm_snapshot_aux_weights") if key not in checkpoint]
        if missing:
            raise CheckpointError(f"{type(self).__name__}: checkpoint {name} (trainer "
                                  f"{checkpoint.get('trainer_name', '?')}) lacks {missing}: not an SCM checkpoint")
        aux_weights = fitting_weights(checkpoint, unwrap(self.aux_network), name, self.my_init_kwargs,
                                      key="scm_aux_network_weights", role="auxiliary network")
        # nnU-Net's own loading of the file (checked above; nnU-Net 2.8's cannot take the dict)
        nnUNetTrainer.load_checkpoint(self, filename_or_checkpoint)
        unwrap(self.aux_network).load_state_dict(aux_weights)
        self.aux_optimizer.load_state_dict(checkpoint["scm_aux_optimizer_state"])
        if self.aux_grad_scaler is not None and checkpoint.get("scm_aux_grad_scaler_state") is not None:
            self.aux_grad_scaler.load_state_dict(checkpoint["scm_aux_grad_scaler_state"])
        unwrap(self.snapshot_primary).load_state_dict(checkpoint["scm_snapshot_primary_weights"])
        unwrap(self.snapshot_aux).load_state_dict(checkpoint["scm_snapshot_aux_weights"])
        self._resumed = True
