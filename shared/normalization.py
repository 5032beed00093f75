"""Normalisation shared by every dataset: translate a sequence so one joint sits at the origin.

This is the reference's `seq_translation` (CTR-GCN `data/ntu*/seq_transformation.py`): the
origin is joint `center` of actor 1 in the first frame where actor 1 is not all zero; it is
subtracted from every frame and actor, and then the frames where an actor was absent (its
coordinates summed to 0) are set back to 0, so padding and absent actors stay zero.

The cache keeps camera coordinates; stage 1 (NW-UCLA, UTD-MHAD, SYSU after layout mapping)
and stage 2 (batches) call these functions. A sequence whose actor 1 is zero everywhere (an
all-padding sample) is returned unchanged.
"""

from __future__ import annotations

import numpy as np
import torch


def translate_to_origin(joints: np.ndarray, center: int) -> np.ndarray:
    """(T, M, V, 3) -> same shape and dtype, translated; the input is not modified."""
    if joints.ndim != 4 or joints.shape[-1] != 3:
        raise ValueError(f"expected joints (T, M, V, 3), got shape {joints.shape}")
    t = joints.shape[0]
    absent = joints.reshape(t, joints.shape[1], -1).sum(axis=-1) == 0  # (T, M)
    real = np.flatnonzero((joints[:, 0] != 0).reshape(t, -1).any(axis=-1))
    if len(real) == 0:
        return joints.copy()
    origin = joints[real[0], 0, center].copy()
    out = joints - origin
    out[absent] = 0
    return out


def origin_torch(x: torch.Tensor, center: int) -> torch.Tensor:
    """(N, T, M, V, 3) -> (N, 3): joint `center` of actor 1 in its first real (not all-zero)
    frame; 0 when actor 1 is zero everywhere. Nearly always frame 0, so only the samples whose
    frame 0 is empty are searched."""
    n = x.shape[0]
    first = torch.zeros(n, dtype=torch.long, device=x.device)
    late = (~x[:, 0, 0].reshape(n, -1).ne(0).any(1)).nonzero().flatten()
    if len(late):
        real = x[late, :, 0].reshape(len(late), x.shape[1], -1).ne(0).any(-1)  # (n_late, T)
        # argmax over a 0/1 tensor returns the first maximum: the first real frame (0 when
        # none, and then the origin is zeroed below).
        first[late] = real.to(torch.uint8).argmax(1)
    rows = torch.arange(n, device=x.device)
    has_real = x[rows, first, 0].reshape(n, -1).ne(0).any(1, keepdim=True)
    return x[rows, first, 0, center] * has_real.to(x.dtype)


def translate_to_origin_torch(x: torch.Tensor, center: int) -> torch.Tensor:
    """(N, T, M, V, 3) -> same, each sample translated by its own first real frame."""
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected x (N, T, M, V, 3), got shape {tuple(x.shape)}")
    n, t = x.shape[:2]
    absent = x.reshape(n, t, x.shape[2], -1).sum(dim=-1) == 0  # (N, T, M)
    out = x - origin_torch(x, center)[:, None, None, None, :]
    return out.masked_fill(absent[..., None, None], 0)
