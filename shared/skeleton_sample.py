"""SkeletonSample: one sample's raw skeletons as every dataset reader returns them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SkeletonSample:
    joints: np.ndarray  # (T, M, V, 3) float32
    frame_index: np.ndarray  # (T,) int32: the kept frame's index in the original video
    color_xy: np.ndarray | None = None  # (T, M, V, 2) float32 colour-image pixels, where known
