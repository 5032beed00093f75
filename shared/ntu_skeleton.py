"""NTU RGB+D `.skeleton` files: a fast reader and a writer of the official text format.

Format (Kinect v2 SDK dump, one value group per line)::

    frameCount
    bodyCount                                   # per frame; may be 0
    bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
        handRightState isRestricted leanX leanY trackingState   # per body, one line
    jointCount                                  # 25
    x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState  # x 25

Floats are written with 7 significant digits (C# `float.ToString()`), e.g. `0.2181153`,
`277.419`, `1.5E-05`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SkeletonFormatError

NUM_JOINTS = 25
BODY_INFO_FIELDS = 10
JOINT_FIELDS = 12
DEPTH_RESOLUTION = (512, 424)
COLOR_RESOLUTION = (1920, 1080)
# Real body IDs are a Kinect tracking counter offset by 2**56 (e.g. 72057594037931101).
BODY_ID_BASE = 1 << 56


@dataclass
class RawBody:
    body_id: str
    frames: np.ndarray  # (Tb,) int: indices (into the file's frames) where the body appears
    joints: np.ndarray  # (Tb, 25, 3) float32 camera coordinates, metres
    color_xy: np.ndarray  # (Tb, 25, 2) float32 colour-image pixel coordinates


@dataclass
class RawSkeleton:
    name: str
    num_frames: int  # frameCount of the file, frames with 0 bodies included
    bodies: list[RawBody]  # in order of first appearance


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

_JOINT_LINE = " ".join(["%.7g"] * (JOINT_FIELDS - 1)) + " %d"
_NEWLINE = "\r\n"  # the dataset was dumped on Windows; the reader accepts either ending


def _format_body_id(body_id: int) -> str:
    body_id = int(body_id)
    if body_id < 0:
        raise ValueError(f"body id must be non-negative, got {body_id}")
    return str(body_id if body_id >= BODY_ID_BASE else BODY_ID_BASE + body_id)


def write_ntu_skeleton(path: str | Path, joints: np.ndarray, color_xy: np.ndarray,
                       body_ids, present: np.ndarray | None = None) -> None:
    """Write bodies as an official-format `.skeleton` file.

    joints (T, B, 25, 3) camera coordinates in metres; color_xy (T, B, 25, 2) pixel coordinates
    in the 1920x1080 colour image; body_ids (B,) ints (small ids are offset by 2**56 to look
    like real ones); present (T, B) bool, default all True (a frame may hold no body).
    Depth coordinates are the colour ones scaled to 512x424, orientations are zero and every
    joint is "tracked" (2): plausible values for fields that the cleaning never reads.
    """
    joints = np.asarray(joints, dtype=np.float64)
    color_xy = np.asarray(color_xy, dtype=np.float64)
    t, b = joints.shape[:2]
    if joints.shape != (t, b, NUM_JOINTS, 3) or color_xy.shape != (t, b, NUM_JOINTS, 2):
        raise ValueError(f"expected joints (T,B,25,3) and color_xy (T,B,25,2), got "
                         f"{joints.shape} and {color_xy.shape}")
    ids = [_format_body_id(i) for i in np.asarray(body_ids).reshape(-1)]
    if len(ids) != b:
        raise ValueError(f"{len(ids)} body ids for {b} bodies")
    present = np.ones((t, b), bool) if present is None else np.asarray(present, bool)
    if present.shape != (t, b):
        raise ValueError(f"present must be (T, B) = {(t, b)}, got {present.shape}")

    scale = np.asarray(DEPTH_RESOLUTION, np.float64) / np.asarray(COLOR_RESOLUTION, np.float64)
    rows = np.concatenate([
        joints, color_xy * scale, color_xy,
        np.zeros((t, b, NUM_JOINTS, 4)),  # orientation W X Y Z
        np.full((t, b, NUM_JOINTS, 1), 2.0),  # trackingState: tracked
    ], axis=-1)

    lines = [str(t)]
    for f in range(t):
        bodies = np.flatnonzero(present[f])
        lines.append(str(len(bodies)))
        for k in bodies:
            lines.append(f"{ids[k]} 0 1 1 1 1 0 0 0 2")
            lines.append(str(NUM_JOINTS))
            lines.extend(_JOINT_LINE % tuple(row) for row in rows[f, k])
    # C# writes "E-05" and "NaN" where %g writes "e-05" and "nan".
    text = _NEWLINE.join(lines).replace("e", "E").replace("nan", "NaN") + _NEWLINE
    Path(path).write_text(text, newline="")
