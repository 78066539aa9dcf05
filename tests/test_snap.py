"""The lab's boundary snap (benchmarks/trainers/snap.py): labels one voxel inside (or outside) an object with a
partial-volume boundary move to the 50% level, and nothing away from the surface changes."""
from __future__ import annotations

import pytest
import torch

from benchmarks.trainers.snap import snap_to_nearest_mean


def partial_volume_sphere(shape: tuple[int, ...], radius: float, value: float, background: float,
                          supersample: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 1, *shape) image of a sphere (circle in 2D) whose boundary voxels hold the fraction of them inside, and its
    (1, 1, *shape) truth: the voxels at least half inside."""
    axes = [(torch.arange(n * supersample, dtype=torch.float64) + 0.5) / supersample - n / 2 for n in shape]
    grids = torch.meshgrid(*axes, indexing="ij")
    inside = (sum(g ** 2 for g in grids) <= radius ** 2).double()
    fraction = torch.nn.functional.avg_pool3d(inside[None, None], supersample) if len(shape) == 3 else \
        torch.nn.functional.avg_pool2d(inside[None, None], supersample)
    image = background + (value - background) * fraction
    return image.float(), (fraction >= 0.5).long()


def _shift_surface(truth: torch.Tensor, inwards: bool) -> torch.Tensor:
    pool = torch.nn.functional.max_pool3d if truth.ndim == 5 else torch.nn.functional.max_pool2d
    mask = truth.float()
    moved = 1 - pool(1 - mask, 3, 1, 1) if inwards else pool(mask, 3, 1, 1)
    return moved.long()


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a * b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("inwards", [True, False])
def test_labels_a_voxel_off_the_surface_move_to_the_half_volume_level(inwards: bool):
    torch.manual_seed(0)
    image, truth = partial_volume_sphere((24, 24, 24), 7.3, value=-1.0, background=1.0)  # dark object
    image = image + 0.05 * torch.randn_like(image)
    labels = _shift_surface(truth, inwards)
    snapped = snap_to_nearest_mean(labels, image, num_classes=2)
    assert dice(labels, truth) < 0.85
    assert dice(snapped, truth) > 0.97
    assert snapped.dtype == labels.dtype and snapped.shape == labels.shape


def test_nothing_changes_away_from_the_surface_and_classes_stay_apart():
    image = torch.ones(1, 1, 20, 20, 20)
    image[..., 3:9, 3:9, 3:9] = -1.0   # object 1, labelled one voxel in
    image[..., 12:18, 12:18, 12:18] = -1.0  # an unlabelled object of the same intensity: must stay background
    image[..., 2:5, 14:17, 2:5] = 3.0   # class 2, labelled exactly
    labels = torch.zeros(1, 1, 20, 20, 20, dtype=torch.int16)
    labels[..., 4:8, 4:8, 4:8] = 1
    labels[..., 2:5, 14:17, 2:5] = 2
    snapped = snap_to_nearest_mean(labels, image, num_classes=3)
    assert (snapped[..., 3:9, 3:9, 3:9] == 1).all() and (snapped == 1).sum() == 6 ** 3
    assert (snapped[..., 12:18, 12:18, 12:18] == 0).all()
    assert torch.equal(snapped == 2, labels == 2)


def test_2d_batches_and_a_class_without_interior_are_left_alone():
    image, truth = partial_volume_sphere((32, 32), 9.2, value=2.0, background=0.0)
    labels = torch.cat([_shift_surface(truth, True), torch.zeros_like(truth)])
    labels[1, 0, 16, 16] = 1  # one voxel: no interior to measure, nothing to snap
    snapped = snap_to_nearest_mean(labels, image.expand(2, -1, -1, -1), num_classes=2)
    # the surround's ring starts one voxel outside the truth here, so voxels just over half inside may stay out
    assert dice(labels[:1], truth) < 0.9 and dice(snapped[:1], truth) > 0.97
    assert torch.equal(snapped[1], labels[1])


def test_shapes_are_checked_early():
    with pytest.raises(ValueError, match=r"\(N, 1, \*spatial\)"):
        snap_to_nearest_mean(torch.zeros(1, 2, 4, 4, 4, dtype=torch.long), torch.zeros(1, 1, 4, 4, 4), 2)
    with pytest.raises(ValueError, match="does not match"):
        snap_to_nearest_mean(torch.zeros(1, 1, 4, 4, 4, dtype=torch.long), torch.zeros(1, 1, 4, 4, 5), 2)
    with pytest.raises(ValueError, match="surround >= 2"):
        snap_to_nearest_mean(torch.zeros(1, 1, 4, 4, 4, dtype=torch.long), torch.zeros(1, 1, 4, 4, 4), 2, surround=1)
