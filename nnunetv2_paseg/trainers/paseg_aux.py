"""The auxiliary network of PA-Seg's stage 2 and its stage-1 trainer, nnUNetTrainerPASegAux.

Stage 2 (nnUNetTrainerSCM) needs two networks of *different* architecture that read the same patches, so the
auxiliary one is derived from the plans' own network: the residual-encoder U-Net when the plans hold the plain
U-Net and vice versa, with the same stages, strides, kernels, feature widths, normalisation and non-linearity.
"""
from __future__ import annotations

from copy import deepcopy

from torch import nn

from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import ConfigurationManager, PlansManager
from nnunetv2_paseg.trainers.paseg import nnUNetTrainerPASeg

PLAIN_UNET = "dynamic_network_architectures.architectures.unet.PlainConvUNet"
RESENC_UNET = "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet"
# One residual block (two convolutions) per encoder stage: as many encoder convolutions as the plain U-Net, and
# with the residual decoder's single convolution per stage 0.9x its FLOPs.
RESENC_BLOCKS_PER_STAGE = 1
RESENC_CONVS_PER_DECODER_STAGE = 1
# nnU-Net's residual-encoder presets (nnUNetPlannerResEncM/L/XL): 1, 3, 4, 6, 6, 6, ... blocks per encoder stage.
RESENC_PRESET_BLOCKS = (1, 3, 4, 6)
# nnU-Net's default plain U-Net (ExperimentPlanner).
PLAIN_CONVS_PER_STAGE = 2


def resenc_preset_blocks(n_stages: int) -> list[int]:
    """Residual blocks per encoder stage of nnU-Net's ResEnc presets for ``n_stages`` stages (1, 3, 4, 6, 6, ...)."""
    return [RESENC_PRESET_BLOCKS[min(i, len(RESENC_PRESET_BLOCKS) - 1)] for i in range(n_stages)]


def auxiliary_architecture(arch_class_name: str, arch_kwargs: dict,
                           blocks_per_stage: list[int] | None = None) -> tuple[str, dict]:
    """The other U-Net family for the same stages: (class name, init kwargs) for ``get_network_from_plans``.

    PlainConvUNet -> ResidualEncoderUNet with ``blocks_per_stage`` residual blocks per encoder stage (default one
    each: about the plain U-Net's cost, see ``RESENC_BLOCKS_PER_STAGE``; ``resenc_preset_blocks`` gives nnU-Net's
    preset depth) and one convolution per decoder stage; ResidualEncoderUNet -> PlainConvUNet with two convolutions
    per encoder and decoder stage (nnU-Net's default). Everything else (n_stages, features_per_stage, kernel_sizes,
    strides, conv/norm/dropout/nonlin ops and their kwargs, conv_bias) is kept.

    Raises:
        ValueError: for any other architecture class (there is no natural counterpart to derive), or
            ``blocks_per_stage`` not one positive number per stage.
    """
    kwargs = deepcopy(dict(arch_kwargs))
    n_stages = kwargs["n_stages"]
    short_name = arch_class_name.rsplit(".", 1)[-1]
    if short_name == "PlainConvUNet":
        blocks = list(blocks_per_stage) if blocks_per_stage is not None else [RESENC_BLOCKS_PER_STAGE] * n_stages
        if len(blocks) != n_stages or min(blocks) < 1:
            raise ValueError(f"blocks_per_stage must give a positive number for each of the {n_stages} stages, "
                             f"got {blocks_per_stage}")
        kwargs.pop("n_conv_per_stage")
        kwargs["n_blocks_per_stage"] = blocks
        kwargs["n_conv_per_stage_decoder"] = [RESENC_CONVS_PER_DECODER_STAGE] * (n_stages - 1)
        return RESENC_UNET, kwargs
    if short_name == "ResidualEncoderUNet":
        kwargs.pop("n_blocks_per_stage")
        for key in ("block", "bottleneck_channels", "stem_channels"):
            kwargs.pop(key, None)
        kwargs["n_conv_per_stage"] = [PLAIN_CONVS_PER_STAGE] * n_stages
        kwargs["n_conv_per_stage_decoder"] = [PLAIN_CONVS_PER_STAGE] * (n_stages - 1)
        return PLAIN_UNET, kwargs
    raise ValueError(f"no auxiliary architecture for network class {arch_class_name!r}: PA-Seg's stage 2 pairs "
                     f"{PLAIN_UNET} with {RESENC_UNET}; plan with one of them")


class nnUNetTrainerPASegAux(nnUNetTrainerPASeg):
    """nnUNetTrainerPASeg with the auxiliary architecture (see ``auxiliary_architecture``): stage 1 of the
    auxiliary network B of nnUNetTrainerSCM. Trains and predicts like any nnU-Net trainer.

    ``preset_depth`` (class attribute): False, one residual block per encoder stage; True, nnU-Net's ResEnc preset
    depth (``resenc_preset_blocks``).
    """

    preset_depth = False

    @classmethod
    def architecture(cls, configuration_manager: ConfigurationManager) -> tuple[str, dict]:
        """(class name, init kwargs) of the network this trainer builds for ``configuration_manager``'s plans."""
        arch_kwargs = configuration_manager.network_arch_init_kwargs
        blocks = resenc_preset_blocks(arch_kwargs["n_stages"]) if cls.preset_depth else None
        return auxiliary_architecture(configuration_manager.network_arch_class_name, arch_kwargs, blocks)

    @classmethod
    def build_network_architecture(cls, plans_manager: PlansManager,
                                   configuration_manager: ConfigurationManager,
                                   num_input_channels: int,
                                   num_output_channels: int,
                                   enable_deep_supervision: bool = True) -> nn.Module:
        arch_class_name, aux_kwargs = cls.architecture(configuration_manager)
        return get_network_from_plans(arch_class_name, aux_kwargs,
                                      configuration_manager.network_arch_init_kwargs_req_import,
                                      num_input_channels, num_output_channels, allow_init=True,
                                      deep_supervision=enable_deep_supervision)

    def initialize(self):
        super().initialize()
        # nnU-Net's log prints the plans' architecture; this trainer builds the other family.
        name, kwargs = self.architecture(self.configuration_manager)
        self.print_to_log_file(f"network built (the auxiliary architecture, not the plans'): {name} {kwargs}")
