"""SkeletonSample: one sample's raw skeletons as every dataset reader returns them, and the check
that its coordinates are positions a depth camera can report (every reader's output passes it;
stage 2's predict can apply it to its input too)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import CoordinateError

# Depth cameras see a few metres (Kinect v2: 0.5-8 m); beyond this a value is a corrupt file, and
# one such value (or an infinity) makes every loss and weight of a training run NaN.
MAX_ABS_METRES = 100.0
AXES = "xyz"


@dataclass
class SkeletonSample:
    joints: np.ndarray  # (T, M, V, 3) float32
    frame_index: np.ndarray  # (T,) int32: the kept frame's index in the original video
    color_xy: np.ndarray | None = None  # (T, M, V, 2) float32 colour-image pixels, where known


def check_coordinates(
    joints: np.ndarray, source, frame_index: np.ndarray | None = None, max_abs: float = MAX_ABS_METRES
) -> None:
    """Raise CoordinateError naming `source`, the frame, person and joint of the first coordinate
    of `joints` (T, M, V, 3), in metres, that is NaN, infinite or beyond `max_abs` metres.

    `frame_index` (T,) maps rows to the frames of the original file, so the message points at the
    frame a user finds in it."""
    joints = np.asarray(joints)
    finite = np.isfinite(joints)
    bad = ~finite | (np.abs(np.where(finite, joints, 0)) > max_abs)
    if not bad.any():
        return
    t, m, v, axis = (int(i) for i in np.argwhere(bad)[0])
    frame = int(frame_index[t]) if frame_index is not None else t
    value = joints[t, m, v, axis]
    problem = "not finite" if not np.isfinite(value) else f"beyond {max_abs:g} m: not a physical position"
    raise CoordinateError(
        source,
        f"frame {frame} (from 0), person {m}, joint {v}: {AXES[axis]} = {value:g} is "
        f"{problem} ({int(bad.any(axis=(1, 2, 3)).sum())} frame(s) with such values)",
    )
