"""Who performs the demo's motions: generated people (`Body`: segment lengths, movement style,
clothes as a `Look`), posed by `Pose` into NTU-25 joints (the trunk first, then arms and legs by
two-bone inverse kinematics), and the `Scene` of actors and props a motion builds, placed in the
world as a `Performance`.

Joints are in the person frame (see kinematics): origin on the floor between the feet, x right,
y up, z forward, metres.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shared.layouts import NTU25

from .kinematics import apply, random_stream, rotation, two_bone, unit

__all__ = [
    "J",
    "LEFT",
    "RIGHT",
    "SIDES",
    "Actor",
    "Body",
    "Look",
    "Performance",
    "Pose",
    "Prop",
    "Scene",
    "performer",
    "side_name",
]

J = {name: i for i, name in enumerate(NTU25.joint_names)}  # NTU-25 joint index by name
RIGHT, LEFT = 1, -1  # side sign = the side's x in the person frame
SIDES = (RIGHT, LEFT)


def side_name(stem: str, side: int) -> str:
    return stem + ("Right" if side == RIGHT else "Left")


def _side(stem: str, side: int) -> int:
    return J[side_name(stem, side)]


@dataclass(frozen=True)
class Look:
    """Colours a person is drawn with (clothes give the RGB stream per-subject appearance)."""

    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shoes: tuple[int, int, int] = (40, 36, 34)


_SHIRTS = (
    (52, 101, 164),
    (204, 40, 40),
    (78, 154, 6),
    (117, 80, 123),
    (196, 160, 0),
    (60, 64, 70),
    (206, 92, 0),
    (225, 225, 220),
    (0, 128, 128),
)
_TROUSERS = ((46, 52, 54), (32, 74, 135), (85, 87, 83), (143, 89, 2), (20, 20, 24))
_SKINS = ((241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172))
_HAIR = ((30, 24, 20), (90, 60, 30), (160, 120, 60), (60, 60, 60))


@dataclass(frozen=True)
class Body:
    """One performer: segment lengths (metres, Kinect v2 joint centres) and movement style."""

    height: float
    spine_lower: float  # SpineBase -> SpineMid
    spine_upper: float  # SpineMid -> SpineShoulder
    neck: float  # SpineShoulder -> Neck
    head: float  # Neck -> Head (the head's centre)
    shoulder_half: float  # SpineShoulder -> shoulder, sideways
    shoulder_drop: float
    hip_half: float
    hip_drop: float
    upper_arm: float
    forearm: float
    hand: float  # wrist -> hand
    tip: float  # hand -> hand tip
    thumb: float
    thigh: float
    shin: float
    ankle: float  # ankle height above the floor
    foot: float  # ankle -> foot joint, forward
    stance: float  # half the distance between the ankles
    speed: float  # > 1: quicker performer, shorter clips
    amplitude: float  # scales gesture sizes
    slouch: float  # constant forward lean, radians
    right_on_top: bool  # which forearm lies on top when crossing arms
    look: Look

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Body:
        h = rng.uniform(1.55, 1.90)
        arm, leg, torso = 1 + rng.normal(0, 0.03, 3)
        width = 1 + rng.normal(0, 0.06)

        def colour(palette) -> tuple[int, int, int]:
            base = np.asarray(palette[rng.integers(len(palette))])
            return tuple(int(c) for c in np.clip(base + rng.integers(-12, 13, 3), 0, 255))

        return cls(
            height=h,
            spine_lower=0.170 * h * torso,
            spine_upper=0.125 * h * torso,
            neck=0.045 * h,
            head=0.065 * h,
            shoulder_half=0.100 * h * width,
            shoulder_drop=0.012 * h,
            hip_half=0.048 * h * width,
            hip_drop=0.02 * h,
            upper_arm=0.165 * h * arm,
            forearm=0.145 * h * arm,
            hand=0.045 * h,
            tip=0.040 * h,
            thumb=0.030 * h,
            thigh=0.240 * h * leg,
            shin=0.230 * h * leg,
            ankle=0.040 * h,
            foot=0.075 * h,
            stance=0.05 * h * width + rng.uniform(0.0, 0.06),
            speed=rng.uniform(0.8, 1.25),
            amplitude=rng.uniform(0.85, 1.15),
            slouch=rng.uniform(-0.02, 0.10),
            right_on_top=bool(rng.random() < 0.6),
            look=Look(colour(_SHIRTS), colour(_TROUSERS), colour(_SKINS), colour(_HAIR)),
        )

    @property
    def stand_height(self) -> float:
        """SpineBase height when standing, knees almost straight."""
        return self.ankle + 0.985 * (self.thigh + self.shin) + self.hip_drop

    @property
    def arm_length(self) -> float:
        return self.upper_arm + self.forearm


def performer(seed: int, dataset: str, subject: int) -> Body:
    return Body.sample(random_stream(seed, dataset + "-body", subject))


class Pose:
    """Builds NTU-25 joints (T, 25, 3) in the person frame (origin on the floor between the feet,
    x right, y up, z forward): the trunk first, then arms and legs by inverse kinematics."""

    def __init__(self, body: Body, frames: int):
        self.body, self.frames = body, frames
        self.joints = np.zeros((frames, NTU25.num_joints, 3))
        self.rot = np.broadcast_to(np.eye(3), (frames, 3, 3))
        self.head_rot = self.rot
        self.pelvis_rot = self.rot

    def trunk(self, pelvis, pitch=0.0, yaw=0.0, roll=0.0, head_pitch=0.0, head_roll=0.0) -> Pose:
        b, t, jt = self.body, self.frames, self.joints
        self.rot = rotation(yaw, np.asarray(pitch) + b.slouch, roll, t)
        self.head_rot = self.rot @ rotation(0.0, head_pitch, head_roll, t)
        self.pelvis_rot = rotation(0.4 * np.asarray(yaw), 0.0, 0.0, t)
        jt[:, J["SpineBase"]] = pelvis
        jt[:, J["SpineMid"]] = pelvis + apply(self.rot, (0, b.spine_lower, -0.01))
        jt[:, J["SpineShoulder"]] = jt[:, J["SpineMid"]] + apply(self.rot, (0, b.spine_upper, -0.015))
        jt[:, J["Neck"]] = jt[:, J["SpineShoulder"]] + apply(self.head_rot, (0, b.neck, 0.01))
        jt[:, J["Head"]] = jt[:, J["Neck"]] + apply(self.head_rot, (0, b.head, 0.015))
        for s in SIDES:
            jt[:, _side("Shoulder", s)] = jt[:, J["SpineShoulder"]] + apply(
                self.rot, (s * b.shoulder_half, -b.shoulder_drop, -0.01)
            )
            jt[:, _side("Hip", s)] = pelvis + apply(self.pelvis_rot, (s * b.hip_half, -b.hip_drop, 0))
        return self

    def point(self, joint: str, offset=(0.0, 0.0, 0.0), frame: str = "trunk") -> np.ndarray:
        """A landmark: joint + offset, the offset in the trunk's, the head's or the person frame."""
        rot = {"trunk": self.rot, "head": self.head_rot, "person": None}[frame]
        offset = np.broadcast_to(np.asarray(offset, float), (self.frames, 3))
        return self.joints[:, J[joint]] + (offset if rot is None else apply(rot, offset))

    def rest_wrist(self, side: int) -> np.ndarray:
        """Where the wrist hangs: below the shoulder whatever the trunk's lean."""
        b = self.body
        return self.joints[:, _side("Shoulder", side)] + np.array([side * 0.035, -0.96 * b.arm_length, 0.03])

    def arm(self, side: int, wrist, pole=(0.3, -1.0, -0.4), hand_bias=(0.0, 0.0, 0.0)) -> Pose:
        """Place one arm reaching for `wrist`; `pole` (trunk frame, x mirrored for the left arm)
        is where the elbow points; `hand_bias` bends the hand away from the forearm's line."""
        b, jt = self.body, self.joints
        mirror = np.array([side, 1.0, 1.0])
        pole = apply(self.rot, np.asarray(pole, float) * mirror)
        elbow, wrist = two_bone(jt[:, _side("Shoulder", side)], np.asarray(wrist, float), b.upper_arm, b.forearm, pole)
        direction = unit(unit(wrist - elbow) + apply(self.rot, np.asarray(hand_bias, float) * mirror))
        hand = wrist + b.hand * direction
        # The thumb points forward and inwards off the hand's line (palm towards the body).
        thumb_dir = self.rot[:, :, 2] - 0.5 * side * self.rot[:, :, 0]
        thumb_dir = unit(thumb_dir - np.sum(thumb_dir * direction, -1, keepdims=True) * direction)
        jt[:, _side("Elbow", side)] = elbow
        jt[:, _side("Wrist", side)] = wrist
        jt[:, _side("Hand", side)] = hand
        jt[:, _side("HandTip", side)] = hand + b.tip * direction
        jt[:, _side("Thumb", side)] = hand + b.thumb * unit(0.5 * direction + thumb_dir)
        return self

    def stand_ankle(self, side: int) -> np.ndarray:
        ankle = np.array([side * self.body.stance, self.body.ankle, 0.0])
        return np.broadcast_to(ankle, (self.frames, 3))

    def legs(self, ankles: dict[int, np.ndarray] | None = None) -> Pose:
        """Knees by IK towards the front; ankles default to standing on the floor."""
        b, jt = self.body, self.joints
        for s in SIDES:
            target = (ankles or {}).get(s, self.stand_ankle(s))
            pole = apply(self.pelvis_rot, (s * 0.15, 0.0, 1.0))
            knee, ankle = two_bone(jt[:, _side("Hip", s)], target, b.thigh, b.shin, pole)
            toe_out = s * 0.15
            jt[:, _side("Knee", s)] = knee
            jt[:, _side("Ankle", s)] = ankle
            jt[:, _side("Foot", s)] = ankle + apply(
                self.pelvis_rot, (b.foot * np.sin(toe_out), -0.6 * b.ankle, b.foot * np.cos(toe_out))
            )
        return self


@dataclass
class Prop:
    """An object in the scene: the RGB stream shows it, the skeleton does not."""

    kind: str  # "cup" | "phone" | "ball" | "chair"
    track: np.ndarray  # (T, 3) its centre per frame
    faces: tuple[np.ndarray, ...] = ()  # static polygons (N, 3), for the chair

    def moved(self, fn: Callable[[np.ndarray], np.ndarray]) -> Prop:
        return Prop(self.kind, fn(self.track), tuple(fn(f) for f in self.faces))


@dataclass
class Actor:
    joints: np.ndarray  # (T, 25, 3) in the actor's person frame
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)  # in the scene's frame
    forward: tuple[float, float, float] = (0.0, 0.0, 1.0)


@dataclass
class Scene:
    actors: list[Actor]
    props: list[Prop] = field(default_factory=list)


@dataclass
class Performance:
    """A scene placed in the world: what every camera films."""

    joints: np.ndarray  # (T, B, 25, 3) world metres
    forward: np.ndarray  # (3,) the direction the scene faces
    props: list[Prop]
    looks: list[Look]
