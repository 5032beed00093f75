"""Input streams of a skeleton batch: joint, bone, joint motion, bone motion (CTR-GCN's four).

All functions take batched (N, T, M, V, C) tensors after augmentation, as the reference computes
bones and motion from the augmented window. The module needs no torch import (tensor methods only),
so the stream names serve `mmcl train --help` without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.errors import MMCLError
from shared.layouts import Layout

if TYPE_CHECKING:
    from torch import Tensor

STREAMS = ("joint", "bone", "joint-motion", "bone-motion")


def is_stream(name: str) -> bool:
    """Whether `canonical_stream` takes `name`."""
    return str(name).strip().lower().replace("_", "-") in STREAMS


def canonical_stream(name: str) -> str:
    """'joint_motion', 'Joint-Motion' and 'joint-motion' are one stream."""
    key = str(name).strip().lower().replace("_", "-")
    if not is_stream(name):
        raise MMCLError(f"unknown stream {name!r}; choose one of: {', '.join(STREAMS)}")
    return key


def bones(x: Tensor, layout: Layout) -> Tensor:
    """Each joint minus its parent; the root (paired with itself) becomes zero."""
    parents = x.new_tensor(layout.parents).long()
    return x - x.index_select(-2, parents)


def motion(x: Tensor) -> Tensor:
    """Forward difference over time (dim 1); the last frame is zero."""
    out = x.new_zeros(x.shape)
    out[:, :-1] = x[:, 1:] - x[:, :-1]
    return out


def make_stream(x: Tensor, stream: str, layout: Layout) -> Tensor:
    """(N, T, M, V, C) joints -> the same shape in the requested stream."""
    stream = canonical_stream(stream)
    if stream.startswith("bone"):
        x = bones(x, layout)
    if stream.endswith("motion"):
        x = motion(x)
    return x


def to_model_input(x: Tensor) -> Tensor:
    """(N, T, M, V, C) -> CTR-GCN's (N, C, T, V, M)."""
    return x.permute(0, 4, 1, 3, 2).contiguous()
