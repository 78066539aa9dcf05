"""The cross knowledge distillation (CKD) term of PA-Seg's stage 2, Self and Cross Monitoring (Zhai et al., IEEE
TMI 2023, arXiv 2208.05669)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                            temperature: float = 4.0) -> torch.Tensor:
    """Temperature-scaled distillation of a teacher's soft labels into a student, per voxel.

    With p_s = softmax(z / T) and p_t = softmax(z' / T) over the class axis (z: student logits, z': teacher logits):

        L_ckd = T^2 * mean over (batch, voxels) of  sum_c p_t,c * (log p_t,c - log p_s,c)

    i.e. KL(p_t || p_s) * T^2, the distillation loss of Hinton et al. (2015) that PA-Seg's CKD applies per voxel.
    Written in the argument order of PyTorch's ``kl_div(input=log p_s, target=p_t)`` it reads
    ``KL(softmax(z/T) || softmax(z'/T)) * T^2``: the same quantity. PA-Seg's public code (github.com/HiLab-git/PA-Seg)
    computes exactly this: ``kl_div`` of ``log_softmax(student / T)`` against ``softmax(teacher / T)`` on the
    (voxels, classes) matrix with 'batchmean', i.e. averaged over the voxels. The T^2 factor keeps the gradient
    ``T * (p_s - p_t) / #voxels`` on z comparable in size across temperatures.

    Args:
        student_logits: (N, C, *spatial) logits of the network being trained; gradients flow into them.
        teacher_logits: (N, C, *spatial) logits of the teacher (a frozen snapshot); treated as constants.
        temperature: T > 0.

    Returns:
        Scalar tensor (float32), >= 0 and 0 exactly when both softmaxes agree everywhere.

    Example:
        >>> import torch
        >>> student, teacher = torch.randn(2, 3, 4, 4, 4, requires_grad=True), torch.randn(2, 3, 4, 4, 4)
        >>> value = cross_distillation_loss(student, teacher, temperature=4.0)
        >>> bool(value > 0), float(cross_distillation_loss(teacher, teacher))
        (True, 0.0)
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"cross_distillation_loss: student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    if student_logits.ndim < 2 or student_logits.shape[1] < 2:
        raise ValueError(f"cross_distillation_loss: expected (N, C >= 2, ...) logits, got {tuple(student_logits.shape)}")
    if not temperature > 0:
        raise ValueError(f"cross_distillation_loss: temperature must be > 0, got {temperature}")
    # float32 whatever the autocast dtype: log-softmax of fp16 logits / T loses the small differences that matter.
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / temperature, dim=1)
    kl_per_voxel = F.kl_div(log_p_student, log_p_teacher, reduction="none", log_target=True).sum(1)
    return kl_per_voxel.mean() * temperature ** 2
