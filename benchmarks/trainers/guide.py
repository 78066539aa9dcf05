"""The regularisers' guide image: the training patch after nnU-Net's spatial augmentation, before its intensity one.

The gated CRF compares intensities of neighbouring voxels with a narrow bandwidth (sigma_x = 0.1 on z-scored images);
nnU-Net's intensity augmentation (Gaussian noise up to variance 0.1, blur, brightness, contrast, simulated low
resolution, gamma) changes those differences as much as the tissue boundaries do. The reference augmented with flips
only, so its CRF always saw the clean image. ``with_guide_channel`` makes nnU-Net's own training pipeline carry a
clean copy: the channel mean of the image is appended as one more channel right after the spatial transform, the
later intensity transforms see only the image channels, and the mirroring (a spatial transform) flips both.
"""
from __future__ import annotations

import torch
from batchgeneratorsv2.transforms.base.basic_transform import BasicTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.pseudo2d import Convert2DTo3DTransform
from batchgeneratorsv2.transforms.utils.random import RandomTransform


class AppendChannelMeanTransform(BasicTransform):
    """Appends the mean over the image's channels (C, ...) as channel C: (C + 1, ...)."""

    def apply(self, data_dict: dict, **params) -> dict:
        image = data_dict["image"]
        data_dict["image"] = torch.cat([image, image.mean(0, keepdim=True)])
        return data_dict


class FirstChannelsTransform(BasicTransform):
    """Applies ``transform`` to the first ``num_channels`` image channels; the others pass unchanged."""

    def __init__(self, transform: BasicTransform, num_channels: int):
        super().__init__()
        self.transform = transform
        self.num_channels = num_channels

    def __call__(self, **data_dict) -> dict:
        image = data_dict["image"]
        out = self.transform(**{**data_dict, "image": image[:self.num_channels]})
        out["image"] = torch.cat([out["image"], image[self.num_channels:]])
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(channels=:{self.num_channels}, transform={self.transform})"


def _is_mirror(transform: BasicTransform) -> bool:
    inner = transform.transform if isinstance(transform, RandomTransform) else transform
    return isinstance(inner, MirrorTransform)


def with_guide_channel(pipeline: ComposeTransforms, num_channels: int) -> ComposeTransforms:
    """nnU-Net's training pipeline, with the clean guide as image channel ``num_channels``.

    The guide (``AppendChannelMeanTransform``) is appended right after the ``SpatialTransform`` (and the
    ``Convert2DTo3DTransform`` that closes dummy-2D augmentation); every later transform but the mirroring is limited
    to the first ``num_channels`` image channels. Batches then hold ``num_channels + 1`` channels; the trainer feeds the
    first ``num_channels`` to the network.

    Raises:
        ValueError: the pipeline has no ``SpatialTransform`` (nothing marks where the intensity augmentation starts).
    """
    transforms = list(pipeline.transforms)
    spatial = next((i for i, t in enumerate(transforms) if isinstance(t, SpatialTransform)), None)
    if spatial is None:
        raise ValueError("with_guide_channel: the training pipeline has no SpatialTransform "
                         f"({[type(t).__name__ for t in transforms]})")
    start = spatial + 1
    if start < len(transforms) and isinstance(transforms[start], Convert2DTo3DTransform):
        start += 1
    later = [t if _is_mirror(t) else FirstChannelsTransform(t, num_channels) for t in transforms[start:]]
    return ComposeTransforms(transforms[:start] + [AppendChannelMeanTransform()] + later)
