"""What a Kinect records of a generated performance: tracker noise, file faults (a spurious body,
frames without a body) and the Kinect v1 joint orders (UTD-MHAD, SYSU)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from shared.layouts import KINECT_V1_TO_NTU25_1BASED, NTU25, UTD_TO_KINECT_V1_1BASED

from .body import J
from .render import Intrinsics

# Kinect-like noise (metres): larger on hands and feet, along depth, and in side views.
_JOINT_NOISE = np.full(NTU25.num_joints, 0.006)
_JOINT_NOISE[[J[n] for n in ("HandLeft", "HandRight", "HandTipLeft", "HandTipRight", "ThumbLeft", "ThumbRight")]] = (
    0.015
)
_JOINT_NOISE[[J[n] for n in ("WristLeft", "WristRight", "FootLeft", "FootRight")]] = 0.010


def measure(joints_cam: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Add per-frame jitter and a slow drift, as a Kinect's tracker does; `scale` grows it (side
    views, Kinect v1)."""
    sd = _JOINT_NOISE[None, None, :, None] * np.array([1.0, 1.0, 1.5]) * scale
    white = rng.normal(0, 1, joints_cam.shape) * sd
    drift = gaussian_filter1d(rng.normal(0, 1, joints_cam.shape), sigma=4, axis=0) * sd * 4
    return joints_cam + white + drift


@dataclass(frozen=True)
class Imperfections:
    """Recorded-data faults that NTU's standard cleaning must handle."""

    noise_body_rate: float = 0.06  # share of files with a short spurious body
    empty_frame_rate: float = 0.06  # share of files with one or two frames without any body
    max_noise_frames: int = 11  # NTU's cleaning drops bodies seen in at most 11 frames


@dataclass
class Recording:
    """One skeleton file's content (before writing)."""

    joints: np.ndarray  # (T, B, 25, 3)
    color_xy: np.ndarray  # (T, B, 25, 2)
    body_ids: np.ndarray  # (B,)
    present: np.ndarray  # (T, B)
    noise_body: bool = False
    empty_frames: tuple[int, ...] = ()


def record(joints: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator, faults: Imperfections) -> Recording:
    t, b = joints.shape[:2]
    ids = rng.integers(1000, 60000) + np.arange(b)
    present = np.ones((t, b), bool)
    noise_body = bool(rng.random() < faults.noise_body_rate)
    if noise_body:
        joints, ids, present = _add_noise_body(joints, ids, present, rng, faults.max_noise_frames)
    empty_frames: tuple[int, ...] = ()
    if rng.random() < faults.empty_frame_rate:
        lost = np.sort(rng.choice(t, size=int(rng.integers(1, 3)), replace=False))
        present[lost] = False
        empty_frames = tuple(int(i) for i in lost)
    return Recording(joints, intrinsics.project(joints), ids, present, noise_body, empty_frames)


def _add_noise_body(
    joints: np.ndarray, ids: np.ndarray, present: np.ndarray, rng: np.random.Generator, max_frames: int
):
    """A spurious short-lived 'body': a wide, flat blob of jittering joints (furniture, a coat);
    returns (joints, ids, present) with it as the last body."""
    t = joints.shape[0]
    length = int(rng.integers(2, max_frames + 1))
    start = int(rng.integers(0, max(t - length, 0) + 1))
    centre = np.array([rng.choice([-1, 1]) * rng.uniform(0.8, 1.4), rng.uniform(-0.6, 0.1), rng.uniform(2.8, 4.5)])
    blob = centre + rng.normal(0, 1, (t, NTU25.num_joints, 3)) * (0.35, 0.12, 0.08)
    present = np.concatenate([present, np.zeros((t, 1), bool)], 1)
    present[start : start + length, -1] = True
    ids = np.append(ids, ids.max() + int(rng.integers(5, 50)))
    return np.concatenate([joints, blob[:, None]], 1), ids, present


# ---------------------------------------------------------------- Kinect v1 layouts (UTD-MHAD, SYSU)

# NTU-25 joint (0-based) that each Kinect v1 joint is read from: the inverse of the joints that
# shared.layouts copies from v1 into NTU-25.
_V1_FROM_NTU25 = np.array(
    sorted(
        (next(iter(row)) - 1, ntu - 1)
        for ntu, row in KINECT_V1_TO_NTU25_1BASED.items()
        if len(row) == 1 and next(iter(row.values())) == 1.0
    )
).T[1]
_V1_SPINE_LOWER = 0.3  # Kinect v1's Spine sits below v2's SpineMid (share of SpineBase->SpineMid)


def ntu25_to_kinect_v1(joints: np.ndarray) -> np.ndarray:
    """(..., 25, 3) NTU joints -> (..., 20, 3) Kinect v1 SDK order, as a v1 tracker places them."""
    v1 = joints[..., _V1_FROM_NTU25, :].copy()
    base, mid = joints[..., J["SpineBase"], :], joints[..., J["SpineMid"], :]
    v1[..., 1, :] = mid + (base - mid) * _V1_SPINE_LOWER
    return v1


def kinect_v1_to_utd(joints: np.ndarray) -> np.ndarray:
    """(..., 20, C) Kinect v1 SDK order -> UTD-MHAD's own order (head first)."""
    return joints[..., np.asarray(UTD_TO_KINECT_V1_1BASED) - 1, :]
