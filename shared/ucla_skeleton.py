"""NW-UCLA skeletons in the JSON layout used by CTR-GCN-family code.

`aXX_sYY_eZZ_vWW.json` = {"file_name": ..., "label": ..., "skeletons": T x 20 x 3} in metres,
camera coordinates, Kinect v1 SDK joint order, one person.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import SkeletonFormatError


def read_ucla_json(path) -> np.ndarray:
    """(T, 1, 20, 3) float32 joints of one NW-UCLA sample."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SkeletonFormatError(path, f"not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or "skeletons" not in data:
        raise SkeletonFormatError(path, "no 'skeletons' key (expected CTR-GCN's NW-UCLA JSON layout)")
    try:
        joints = np.asarray(data["skeletons"], dtype=np.float32)
    except (TypeError, ValueError):
        raise SkeletonFormatError(path, "'skeletons' is not a T x 20 x 3 array of numbers") from None
    if joints.ndim != 3 or joints.shape[1:] != (20, 3):
        raise SkeletonFormatError(path, f"'skeletons' has shape {joints.shape}, expected (T, 20, 3)")
    if len(joints) == 0:
        raise SkeletonFormatError(path, "no frames")
    if not np.isfinite(joints).all():
        raise SkeletonFormatError(path, "non-finite coordinates")
    return joints[:, None]
