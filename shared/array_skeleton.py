"""Skeletons as plain array files, the format a custom dataset's own tools most easily write.

    <sample>.npy   joints (T, V, 3) or (T, M, V, 3)
    <sample>.npz   joints (same shapes); optional frame_index (T,) and color_xy (T, [M,] V, 2)

Joints are metres in camera coordinates, in the joint order of the dataset's layout
(shared/layouts.py), as every reader returns them; frames where nobody is tracked are dropped by
whoever writes the file (a row of zeros is an absent person).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import SkeletonFormatError
from .skeleton_sample import SkeletonSample

ARRAY_SUFFIXES = (".npy", ".npz")


FRAME_INDEX_MAX = 2**31 - 1  # stored as int32


def _bad_frame_indices(values: np.ndarray) -> np.ndarray:
    """Positions of entries that are not whole numbers in [0, FRAME_INDEX_MAX]."""
    if values.dtype.kind not in "iuf":
        return np.arange(len(values))
    v = values.astype(np.float64)
    return np.flatnonzero(~np.isfinite(v) | (v != np.round(v)) | (v < 0) | (v > FRAME_INDEX_MAX))


def read_array_skeleton(path) -> SkeletonSample:
    """The file's frames as (T, M, V, 3) float32 (M = 1 for a (T, V, 3) array)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        else:
            arrays = {"joints": np.load(path, allow_pickle=False)}
    except FileNotFoundError:
        raise SkeletonFormatError(path, "no such file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise SkeletonFormatError(path, f"not a readable numpy {path.suffix} file ({e})") from None
    if "joints" not in arrays:
        raise SkeletonFormatError(path, f"no 'joints' array (it holds: {', '.join(arrays) or 'nothing'})")
    joints = _with_persons(arrays["joints"], 3, path, "joints")
    t = len(joints)
    if t == 0:
        raise SkeletonFormatError(path, "no frames")
    frame_index = np.arange(t, dtype=np.int32)
    if "frame_index" in arrays:
        given = np.asarray(arrays["frame_index"])
        if given.shape != (t,):
            raise SkeletonFormatError(path, f"frame_index of shape {given.shape}, expected ({t},)")
        bad = _bad_frame_indices(given)
        if len(bad):  # NaN or 2**33 cast to int32 silently became other frames
            raise SkeletonFormatError(
                path,
                f"frame_index[{bad[0]}] is {given[bad[0]].item()!r}: frame indices "
                f"are whole numbers from 0 to {FRAME_INDEX_MAX}",
            )
        frame_index = given.astype(np.int32)
    color = None
    if "color_xy" in arrays:
        color = _with_persons(arrays["color_xy"], 2, path, "color_xy")
        if color.shape[:-1] != joints.shape[:-1]:
            raise SkeletonFormatError(path, f"color_xy of shape {color.shape} does not match joints {joints.shape}")
    return SkeletonSample(joints, frame_index, color)


def _with_persons(array, channels: int, path: Path, what: str) -> np.ndarray:
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number):
        raise SkeletonFormatError(path, f"{what} holds {array.dtype}, not numbers")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[-1] != channels:
        raise SkeletonFormatError(
            path, f"{what} of shape {array.shape}, expected (T, V, {channels}) or (T, M, V, {channels})"
        )
    return array.astype(np.float32)
