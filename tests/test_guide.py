"""The clean guide image of the regularisers (benchmarks/trainers/guide.py, for a screening variant of the lab) in a
pipeline shaped like nnU-Net's."""
from __future__ import annotations

import itertools

import pytest
import torch
from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform
from batchgeneratorsv2.transforms.spatial.spatial import SpatialTransform
from batchgeneratorsv2.transforms.utils.compose import ComposeTransforms
from batchgeneratorsv2.transforms.utils.random import RandomTransform

from benchmarks.trainers.guide import with_guide_channel

SHAPE = (8, 10, 12)


def _pipeline(noise: float) -> ComposeTransforms:
    # nnU-Net's order: spatial transform (here one that keeps the patch as it is), intensity, mirroring
    return ComposeTransforms([
        SpatialTransform(SHAPE, patch_center_dist_from_border=0, random_crop=False, p_elastic_deform=0, p_rotation=0,
                         p_scaling=0),
        RandomTransform(GaussianNoiseTransform(noise_variance=(noise, noise)), apply_probability=1),
        MirrorTransform(allowed_axes=(0, 1, 2)),
    ])


def _flips(volume: torch.Tensor) -> list[torch.Tensor]:
    return [volume.flip([a + 1 for a in axes]) if axes else volume
            for n in range(4) for axes in itertools.combinations(range(3), n)]


@pytest.mark.parametrize("seed", range(4))
def test_guide_is_mirrored_with_the_image_but_not_noised(seed: int):
    torch.manual_seed(seed)
    image = torch.rand(2, *SHAPE)
    out = with_guide_channel(_pipeline(0.5), 2)(image=image.clone(), segmentation=torch.zeros(1, *SHAPE))
    assert out["image"].shape == (3, *SHAPE)
    augmented, guide = out["image"][:2], out["image"][2:]
    clean = image.mean(0, keepdim=True)
    matches = [i for i, flipped in enumerate(_flips(clean)) if torch.allclose(flipped, guide, atol=1e-4)]
    assert len(matches) == 1, "the guide is the channel mean of the image, mirrored like it"
    flipped_image = _flips(image)[matches[0]]
    noise = augmented - flipped_image
    assert noise.std().item() > 0.3, "the image channels are still augmented"


def test_without_spatial_transform_the_guide_has_no_place():
    with pytest.raises(ValueError, match="no SpatialTransform"):
        with_guide_channel(ComposeTransforms([MirrorTransform(allowed_axes=(0,))]), 1)
