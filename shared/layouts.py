"""Skeleton layouts as data: joint names, bone pairs and the mappings between layouts.

Joint numbers in the tables below are 1-based, as the datasets document them; the `Layout`
object exposes 0-based indices. Bone pairs are (child, parent); the root is paired with itself,
as in CTR-GCN's `bone_pairs.py`, so the bone stream keeps one vector per joint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    name: str
    joint_names: tuple[str, ...]
    bone_pairs_1based: tuple[tuple[int, int], ...]
    center_1based: int  # joint whose first-frame position becomes the origin (NTU: spine middle)

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bone_pairs(self) -> list[tuple[int, int]]:
        """(child, parent), 0-based, root paired with itself."""
        return [(c - 1, p - 1) for c, p in self.bone_pairs_1based]

    @property
    def inward(self) -> list[tuple[int, int]]:
        """Graph edges child -> parent, 0-based, without the root's self-pair."""
        return [(c, p) for c, p in self.bone_pairs if c != p]

    @property
    def parents(self) -> np.ndarray:
        """parents[j] = parent of joint j (the root is its own parent)."""
        out = np.arange(self.num_joints)
        for c, p in self.bone_pairs:
            out[c] = p
        return out

    @property
    def center(self) -> int:
        return self.center_1based - 1


# laid out by hand, as a table: ruff format leaves it so
# fmt: off
NTU25 = Layout(
    name="ntu25",
    joint_names=(
        "SpineBase", "SpineMid", "Neck", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
        "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft",
        "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight",
        "SpineShoulder", "HandTipLeft", "ThumbLeft", "HandTipRight", "ThumbRight",
    ),
    bone_pairs_1based=(
        (1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
        (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
        (20, 19), (22, 23), (21, 21), (23, 8), (24, 25), (25, 12),
    ),
    center_1based=2,
)
# fmt: on

# Kinect v1 SDK order (NW-UCLA, SYSU). Bone pairs as CTR-GCN's NW-UCLA pairs (root 3).
# laid out by hand, as a table: ruff format leaves it so
# fmt: off
KINECT_V1 = Layout(
    name="kinect_v1",
    joint_names=(
        "HipCenter", "Spine", "ShoulderCenter", "Head", "ShoulderLeft", "ElbowLeft", "WristLeft",
        "HandLeft", "ShoulderRight", "ElbowRight", "WristRight", "HandRight", "HipLeft",
        "KneeLeft", "AnkleLeft", "FootLeft", "HipRight", "KneeRight", "AnkleRight", "FootRight",
    ),
    bone_pairs_1based=(
        (1, 2), (2, 3), (3, 3), (4, 3), (5, 3), (6, 5), (7, 6), (8, 7), (9, 3), (10, 9),
        (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18),
        (20, 19),
    ),
    center_1based=2,
)
# fmt: on

LAYOUTS = {layout.name: layout for layout in (NTU25, KINECT_V1)}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton layout {name!r}; known: {', '.join(LAYOUTS)}") from None


# UTD-MHAD stores its 20 Kinect v1 joints in its own order; entry i is the Kinect v1 SDK joint
# (1-based) of UTD joint i+1: head, shoulder_center, spine, hip_center, then arms and legs as SDK.
UTD_TO_KINECT_V1_1BASED = (4, 3, 2, 1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)


def utd_to_kinect_v1(joints: np.ndarray) -> np.ndarray:
    """Reorder (..., 20, C) UTD-MHAD joints into the Kinect v1 SDK order."""
    out = np.empty_like(joints)
    out[..., np.asarray(UTD_TO_KINECT_V1_1BASED) - 1, :] = joints
    return out


# Kinect v1 (20) -> NTU (25) as a linear map: each NTU joint is a weighted sum of v1 joints.
# Joints both layouts have are copied; Neck lies halfway between ShoulderCenter and Head; hand
# tips and thumbs, which v1 lacks, are extrapolated along wrist -> hand (tip one half, thumb one
# quarter of that segment beyond the hand). Numbers are 1-based (ntu_joint: {v1_joint: weight}).
KINECT_V1_TO_NTU25_1BASED: dict[int, dict[int, float]] = {
    1: {1: 1.0},
    2: {2: 1.0},
    3: {3: 0.5, 4: 0.5},
    4: {4: 1.0},
    5: {5: 1.0},
    6: {6: 1.0},
    7: {7: 1.0},
    8: {8: 1.0},
    9: {9: 1.0},
    10: {10: 1.0},
    11: {11: 1.0},
    12: {12: 1.0},
    13: {13: 1.0},
    14: {14: 1.0},
    15: {15: 1.0},
    16: {16: 1.0},
    17: {17: 1.0},
    18: {18: 1.0},
    19: {19: 1.0},
    20: {20: 1.0},
    21: {3: 1.0},
    22: {8: 1.5, 7: -0.5},
    23: {8: 1.25, 7: -0.25},
    24: {12: 1.5, 11: -0.5},
    25: {12: 1.25, 11: -0.25},
}


def mapping_matrix(table: dict[int, dict[int, float]], v_out: int, v_in: int) -> np.ndarray:
    """(v_out, v_in) matrix W with out = W @ in over the joint axis."""
    w = np.zeros((v_out, v_in), dtype=np.float32)
    for j_out, row in table.items():
        for j_in, weight in row.items():
            w[j_out - 1, j_in - 1] = weight
    return w


KINECT_V1_TO_NTU25 = mapping_matrix(KINECT_V1_TO_NTU25_1BASED, 25, 20)


def kinect_v1_to_ntu25(joints: np.ndarray) -> np.ndarray:
    """Map (..., 20, C) Kinect v1 joints to (..., 25, C) NTU joints (zeros stay zeros)."""
    return np.einsum("oi,...ic->...oc", KINECT_V1_TO_NTU25, joints).astype(joints.dtype)


# --------------------------------------------------------------------------- converting layouts

# A function mapping joints (..., V_source, C) of one layout to (..., V_dest, C) of another.
LayoutMap = Callable[[np.ndarray], np.ndarray]

# Every cross-layout input (zero-shot, predict, fine-tuning on another layout) goes through here.
LAYOUT_MAPS: dict[tuple[str, str], LayoutMap] = {
    ("kinect_v1", "ntu25"): kinect_v1_to_ntu25,
}


def same_layout(joints: np.ndarray) -> np.ndarray:
    """The identity map (a named function, so data sources holding it pickle to worker processes)."""
    return joints


def layout_map(source: str, dest: str) -> LayoutMap | None:
    """The map from `source` to `dest` joints (the identity when they are equal); None when there
    is none, for the caller to report with its own context (see `describe_layout_maps`)."""
    return same_layout if source == dest else LAYOUT_MAPS.get((source, dest))


def describe_layout_maps() -> str:
    return ", ".join(f"{a} -> {b}" for a, b in LAYOUT_MAPS)


def pad_persons(joints: np.ndarray, num_person: int) -> np.ndarray:
    """(T, M, V, C) -> (T, num_person, V, C) float32; the added persons are absent (all zero),
    as a missing second actor is everywhere else."""
    t, m, v, c = joints.shape
    if m > num_person:
        raise ValueError(f"{m} persons do not fit in {num_person}")
    out = np.zeros((t, num_person, v, c), np.float32)
    out[:, :m] = joints
    return out
