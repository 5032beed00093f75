"""UTD-MHAD skeletons: `a{A}_s{S}_t{T}_skeleton.mat`, variable `d_skel` of shape 20 x 3 x T.

UTD-MHAD stores Kinect v1 joints in its own order (head first); they are returned in the Kinect
v1 SDK order (`layouts.utd_to_kinect_v1`), metres, one person. The release has no colour-pixel
coordinates, so they are projected from the 3-D joints with the Kinect v1 colour camera's nominal
intrinsics: only approximate (the depth-to-colour offset is ignored), but enough for the person
crop of the temporal image, which adds a margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .kinect_v1_mat import clean_kinect_v1, frames_first, load_mat_array
from .layouts import utd_to_kinect_v1
from .skeleton_sample import SkeletonSample

VARIABLE = "d_skel"
COLOR_RESOLUTION = (640, 480)
# NUI_CAMERA_COLOR_NOMINAL_FOCAL_LENGTH_IN_PIXELS of the Kinect v1 SDK, for 640 x 480 colour.
COLOR_FOCAL_PX = 531.15


def read_utd_mat(path) -> SkeletonSample:
    """joints (T, 1, 20, 3) float32 in Kinect v1 SDK order, the kept frames' indices, and the
    projected colour coordinates (T, 1, 20, 2); raises SkeletonFormatError for a bad file."""
    path = Path(path)
    raw = frames_first(path, VARIABLE, load_mat_array(path, VARIABLE), channels=3)
    frames = clean_kinect_v1(path, utd_to_kinect_v1(raw))
    joints = frames.joints[:, None]
    return SkeletonSample(joints, frames.frame_index, project_to_color(joints))


def project_to_color(
    joints: np.ndarray, resolution: tuple[int, int] = COLOR_RESOLUTION, focal: float = COLOR_FOCAL_PX
) -> np.ndarray:
    """Pinhole projection of (..., 3) camera-space metres to (..., 2) colour pixels, with the
    Kinect SDK's convention (NuiTransformSkeletonToDepthImage): u grows with x, v falls with y.
    Points at z <= 0 (untracked) become (0, 0), the cache's "untracked"."""
    x, y, z = np.moveaxis(np.asarray(joints, np.float64), -1, 0)
    in_front = z > 0
    safe_z = np.where(in_front, z, 1.0)
    u = resolution[0] / 2 + focal * x / safe_z
    v = resolution[1] / 2 - focal * y / safe_z  # image rows grow downwards, y upwards
    out = np.stack([u, v], axis=-1)
    out[~in_front] = 0
    return out.astype(np.float32)
