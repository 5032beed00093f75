"""Geometry of the demo's motions: random streams, blends and easing, rotations of the person
frame, frames placed in a parent frame, and two-bone inverse kinematics.

Person frame: origin on the floor between the feet, x right, y up, z forward, metres. Randomness
comes from `random_stream(seed, *key)`, one independent stream per key, so a sample never depends
on which others are generated, or in which order.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy.spatial.transform import Rotation

__all__ = [
    "apply",
    "heading",
    "mix",
    "random_stream",
    "rotation",
    "smoothstep",
    "to_local",
    "to_parent",
    "two_bone",
    "unit",
]


def random_stream(seed: int, *key: int | str) -> np.random.Generator:
    """An independent stream per (seed, key), so results never depend on task order."""
    words = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng(words)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def mix(a: np.ndarray, b: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Per-frame blend from a (w = 0) to b (w = 1); w (T,) or scalar, a and b (T, ...)."""
    a, b, w = np.asarray(a, float), np.asarray(b, float), np.asarray(w, float)
    w = w.reshape(w.shape + (1,) * (max(a.ndim, b.ndim) - max(w.ndim, 1))) if w.ndim else w
    return a + (b - a) * w


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero velocity and acceleration at both ends (smootherstep)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def rotation(yaw, pitch, roll, frames: int) -> np.ndarray:
    """(T, 3, 3) rotations of the person frame (x right, y up, z forward): yaw turns forward to
    the right, pitch leans up forward, roll leans up to the right; applied roll, pitch, yaw."""
    angles = [np.broadcast_to(np.asarray(a, float), (frames,)) for a in (yaw, pitch, roll)]
    angles[2] = -angles[2]  # scipy's z rotation turns +x towards +y; ours leans +y towards +x
    return Rotation.from_euler("YXZ", np.stack(angles, -1)).as_matrix()


def apply(rot: np.ndarray, v) -> np.ndarray:
    """Rotate a vector (3,) or per-frame vectors (T, 3) by (T, 3, 3) rotations."""
    v = np.broadcast_to(np.asarray(v, float), rot.shape[:-1])
    return np.einsum("tij,tj->ti", rot, v)


def _axes(forward) -> np.ndarray:
    """Rows right, up, forward of a frame standing upright and facing `forward` (horizontal);
    a proper rotation, so (0, 0, 1) gives the identity (the person frame itself)."""
    f = unit(np.array([forward[0], 0.0, forward[2]], float))
    up = np.array([0.0, 1.0, 0.0])
    return np.stack([np.cross(up, f), up, f])


def to_parent(points: np.ndarray, origin, forward) -> np.ndarray:
    """Points in a frame at `origin` facing `forward` -> the parent frame."""
    return np.asarray(origin, float) + points @ _axes(forward)


def to_local(points: np.ndarray, origin, forward) -> np.ndarray:
    return (points - np.asarray(origin, float)) @ _axes(forward).T


def heading(azimuth_deg: float) -> np.ndarray:
    """Horizontal direction towards a camera standing at this azimuth around the scene origin."""
    a = np.radians(azimuth_deg)
    return np.array([np.sin(a), 0.0, -np.cos(a)])


def two_bone(root, target, l1: float, l2: float, pole):
    """Analytic two-segment IK: (middle joint, end joint) reaching for target, bending to pole."""
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    reach = np.clip(dist, abs(l1 - l2) + 1e-3, 0.999 * (l1 + l2))
    cos_a = (l1 * l1 + reach * reach - l2 * l2) / (2 * l1 * reach)
    sin_a = np.sqrt(np.clip(1 - cos_a * cos_a, 0, 1))
    bend = unit(pole - np.sum(pole * u, -1, keepdims=True) * u)
    return root + l1 * (cos_a * u + sin_a * bend), root + reach * u
