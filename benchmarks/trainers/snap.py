"""Hard labels moved to the labels' partial-volume convention in a one-voxel band around each object's surface: a pure
function over tensors, used by the lab's SCM variant that self-trains on snapped teacher labels."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _max_filter(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilation of a float {0, 1} mask (N, C, *spatial) by a cube of ``radius`` voxels."""
    pool = F.max_pool3d if mask.ndim == 5 else F.max_pool2d
    return pool(mask, kernel_size=2 * radius + 1, stride=1, padding=radius)


@torch.no_grad()
def snap_to_nearest_mean(labels: torch.Tensor, image: torch.Tensor, num_classes: int,
                         surround: int = 3) -> torch.Tensor:
    """Re-label the voxels next to each object's surface by the nearer of two intensity means.

    Full labels of partial-volume images cut where a voxel is half object, half surround; a model whose boundary sits
    on the image's steepest edge (PASeg's gated CRF, a darker level on the ventricles) misses a layer one voxel deep.
    For each sample and foreground class c of ``labels``, with mu_c the mean of ``image`` over c's interior (c eroded
    by one voxel; c itself if that is empty) and mu_s the mean over the background voxels 2..``surround`` voxels
    outside c:

        background voxel touching c (dilation by one voxel)  ->  c           if ||x - mu_c|| < ||x - mu_s||
        c voxel touching the background (not in c's interior) ->  background if ||x - mu_s|| < ||x - mu_c||

    a background voxel claimed by several classes goes to the one whose mean is nearest. Only voxels within one voxel
    of the surface change, so no voxel away from an object can become foreground (unlike a region term, which learns
    "this intensity is the object" wherever it occurs). Classes without interior or surround voxels are left as they
    are.

    Args:
        labels: (N, 1, *spatial) integer labels in 0..num_classes-1 (0 is background), 2D or 3D.
        image: (N, K, *spatial) float image of the same spatial shape (all K channels enter the distances).
        num_classes: C, background included (>= 2).
        surround: outer radius, in voxels, of the ring whose mean is the surround's (>= 2).

    Returns:
        (N, 1, *spatial) labels of the same dtype.

    Example:
        >>> image = torch.zeros(1, 1, 9, 9, 9); image[..., 2:7, 2:7, 2:7] = 1.0   # a bright cube
        >>> labels = torch.zeros(1, 1, 9, 9, 9, dtype=torch.long); labels[..., 3:6, 3:6, 3:6] = 1  # one voxel in
        >>> bool((snap_to_nearest_mean(labels, image, 2) == (image > 0.5)).all())
        True
    """
    if labels.ndim not in (4, 5) or labels.shape[1] != 1:
        raise ValueError(f"labels must be (N, 1, *spatial) 2D or 3D, got shape {tuple(labels.shape)}")
    if image.shape[0] != labels.shape[0] or image.shape[2:] != labels.shape[2:]:
        raise ValueError(f"image {tuple(image.shape)} does not match labels {tuple(labels.shape)}")
    if num_classes < 2 or surround < 2:
        raise ValueError(f"need num_classes >= 2 and surround >= 2, got {num_classes} and {surround}")
    spatial = tuple(range(2, labels.ndim))
    one_hot = F.one_hot(labels[:, 0].long(), num_classes).movedim(-1, 1).float()  # (N, C, *spatial)
    objects = one_hot[:, 1:]
    background = one_hot[:, :1]
    touching = _max_filter(objects, 1)
    interior = 1.0 - _max_filter(1.0 - objects, 1)
    empty_interior = interior.sum(spatial, keepdim=True) == 0
    interior = torch.where(empty_interior, objects, interior)
    ring = (_max_filter(objects, surround) - touching) * background

    image = image.float()

    def mean_over(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # (N, C-1, K) per-class means of each channel, and whether the mask had any voxel
        count = mask.sum(spatial)
        total = torch.einsum("nc...,nk...->nck", mask, image)
        return total / count.clamp_min(1)[..., None], count > 0

    mu_object, has_object = mean_over(interior)
    mu_surround, has_surround = mean_over(ring)
    valid = (has_object & has_surround)[(...,) + (None,) * len(spatial)]  # (N, C-1, 1, ...)

    def squared_distance(mu: torch.Tensor) -> torch.Tensor:
        # (N, C-1, *spatial): ||x - mu_c||^2 over the channels
        return ((image[:, None] - mu[(...,) + (None,) * len(spatial)]) ** 2).sum(2)

    d_object, d_surround = squared_distance(mu_object), squared_distance(mu_surround)
    nearer_object = d_object < d_surround
    claims = (touching > 0) & (background > 0) & nearer_object & valid
    released = (objects > 0) & (interior == 0) & ~nearer_object & valid

    out = labels.clone()
    out[released.any(1, keepdim=True)] = 0
    claimed = claims.any(1, keepdim=True)
    nearest = torch.where(claims, d_object, torch.full_like(d_object, float("inf"))).argmin(1, keepdim=True) + 1
    out[claimed] = nearest[claimed].to(out.dtype)
    return out
