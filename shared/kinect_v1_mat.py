"""Kinect v1 skeletons stored in MATLAB files (UTD-MHAD, SYSU-3D-HOI): loading and sanity checks.

Both releases keep one `20 x C x T` array per sample (joints x coordinates x frames). Facts that
no primary source confirms (units, joint order, which way is up) are checked on every file, so a
release that differs fails loudly, naming the file, instead of training on nonsense:
- metres: the median HipCenter -> ShoulderCenter distance must be a torso length (0.1 to 1.5);
- Kinect v1 SDK order with y up: the head must be above the hip centre in most frames.
Frames that are all zero (not tracked) or hold a non-finite value are dropped, as NTU cleaning
drops NaN frames; `frame_index` keeps where the kept frames were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from .errors import SkeletonFormatError
from .layouts import KINECT_V1

NUM_JOINTS = 20
TORSO_METRES = (0.1, 1.5)  # plausible HipCenter -> ShoulderCenter length in metres
_HIP, _SHOULDER, _HEAD = (KINECT_V1.joint_names.index(n) for n in ("HipCenter", "ShoulderCenter", "Head"))


@dataclass
class KinectV1Frames:
    joints: np.ndarray  # (T, 20, 3) float32, Kinect v1 SDK order, metres
    frame_index: np.ndarray  # (T,) int32: each kept frame's index in the file


def load_mat_array(path, variable: str) -> np.ndarray:
    """One numeric variable of a MATLAB file (v4 to v7.2 via scipy, v7.3 = HDF5 via h5py)."""
    path = Path(path)
    if not path.is_file():
        raise SkeletonFormatError(path, "no such file")
    if h5py.is_hdf5(path):  # v7.3, which scipy does not read
        return _load_v73(path, variable)
    try:
        data = scipy.io.loadmat(path, variable_names=[variable])
    except (MatReadError, OSError, ValueError, TypeError, EOFError, IndexError, KeyError) as e:
        # scipy reports a damaged header with any of these
        raise SkeletonFormatError(path, f"not a readable MATLAB file ({e})") from None
    if variable not in data:
        raise SkeletonFormatError(path, f"no variable {variable!r} in the MATLAB file")
    return _numeric(path, variable, data[variable])


def _load_v73(path: Path, variable: str) -> np.ndarray:
    try:
        with h5py.File(path, "r") as f:
            if variable not in f:
                raise SkeletonFormatError(path, f"no variable {variable!r} in the MATLAB v7.3 file")
            # MATLAB writes column-major arrays, so HDF5 holds the transpose.
            return _numeric(path, variable, f[variable][()].T)
    except OSError as e:
        raise SkeletonFormatError(path, f"not a readable MATLAB v7.3 file ({e})") from None


def _numeric(path: Path, variable: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise SkeletonFormatError(path, f"variable {variable!r} is not a numeric array ({arr.dtype})")
    return arr.astype(np.float64)


def frames_first(path, variable: str, arr: np.ndarray, channels: int) -> np.ndarray:
    """A `20 x C' x T` array (C' >= channels) as (T, 20, channels). MATLAB drops a trailing
    singleton dimension, so a one-frame sample arrives as 20 x C'."""
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[0] != NUM_JOINTS or arr.shape[1] < channels or arr.shape[2] == 0:
        raise SkeletonFormatError(
            path,
            f"variable {variable!r} has shape {arr.shape}, expected "
            f"({NUM_JOINTS}, {channels}, T>0) (joints x coordinates x frames)",
        )
    return np.moveaxis(arr[:, :channels], -1, 0)


def clean_kinect_v1(path, joints: np.ndarray) -> KinectV1Frames:
    """Drop untracked frames of (T, 20, 3) Kinect v1 joints and check units and orientation."""
    keep = np.isfinite(joints).all(axis=(1, 2)) & (joints != 0).any(axis=(1, 2))
    if not keep.any():
        raise SkeletonFormatError(path, "no tracked frame (every frame is all zero or non-finite)")
    joints = joints[keep]
    check_kinect_v1_pose(path, joints)
    return KinectV1Frames(joints.astype(np.float32), np.flatnonzero(keep).astype(np.int32))


def check_kinect_v1_pose(path, joints: np.ndarray) -> None:
    """Raise when (T, 20, 3) joints are not metres, or not Kinect v1 SDK order with y up."""
    torso = float(np.median(np.linalg.norm(joints[:, _SHOULDER] - joints[:, _HIP], axis=-1)))
    low, high = TORSO_METRES
    if not low <= torso <= high:
        raise SkeletonFormatError(
            path,
            f"median torso length (HipCenter to ShoulderCenter) is {torso:.4g}, expected "
            f"{low} to {high} metres: the coordinates are in another unit or another joint order",
        )
    if np.median(joints[:, _HEAD, 1] - joints[:, _HIP, 1]) <= 0:
        raise SkeletonFormatError(
            path,
            "the head is below the hip centre in most frames: the joint order or the "
            "direction of the y axis differs from Kinect v1's (y up)",
        )
