"""Generated demo data in the real file layouts of NTU RGB+D, UTD-MHAD and SYSU-3D-HOI.

One set of parametric 3D motions (real NTU action ids, `MOTIONS`) is performed by generated people,
filmed by virtual Kinects and written in each dataset's own layout, so that stage 1 reads the demo
with the same readers as the real data, and zero-shot / fine-tuning on the generated UTD-MHAD and
SYSU layouts is meaningful end to end.

Layouts written (``{x:03d}`` = zero-padded number)::

    generate_demo(root)   NTU RGB+D; names SsssCcccPpppRrrrAaaa
      root/nturgb+d_skeletons/S{setup:03d}C{camera:03d}P{subject:03d}R{rep:03d}A{action:03d}.skeleton
      root/nturgb+d_rgb/<same name>_rgb.avi         H.264 (libx264) in AVI, video_size, fps
    generate_utd(root)    UTD-MHAD
      root/Skeleton/a{action}_s{subject}_t{trial}_skeleton.mat   d_skel (20, 3, T), UTD joint order
      root/RGB/a{action}_s{subject}_t{trial}_color.avi           640x480 H.264 in AVI
    generate_sysu(root)   SYSU-3D-HOI (naming chosen here: the release's folder names are unknown)
      root/3DvideoNorm/s{subject:02d}/video{activity}/sklWorld.mat   SW (20, 3, T), Kinect v1 order
      root/3DvideoNorm/s{subject:02d}/video{activity}/sklImage.mat   S (20, 2, T), 640x480 pixels
      root/3DvideoNorm/s{subject:02d}/video{activity}/rgb/{frame:05d}.jpg   frames 1..T, 640x480
      (activity = the SYSU class number: 1 drinking, 3 calling phone, 7 sitting chair; the sample
      name in the registry is s{subject:02d}_a{activity:02d})

Conventions, as in the real data: camera coordinates in metres, x right, y up, z away from the
camera; a person facing the camera has their right side at +x (Kinect's mirrored view). Colour
coordinates are a pinhole projection: Kinect v2 colour (fx = fy = 1060, cx = 960, cy = 540 in
1920x1080; the demo video is that frame scaled to `video_size`), Kinect v1 (fx = fy = 531.15 in
640x480) for UTD-MHAD and SYSU. Frame i of a skeleton file is frame i of its video.

NTU scene: cameras 1, 2, 3 stand at -45, 0, +45 degrees around the performer at the same height;
setup (odd subjects: S001, even: S002) sets their distance and height and the room's colours. As
in NTU, replication 1 faces camera 1 and replication 2 faces camera 3; the two-person action faces
camera 2. Each camera measures the same performance with its own noise (larger on hands and in
side views). A few files carry Kinect's imperfections: a spurious body seen for at most 11 frames
(NTU's cleaning drops it), and one or two frames with no body at all (the cleaning drops them).

Everything is deterministic: every sample draws from its own random stream keyed by (seed, what,
subject, replication, action, camera), so files do not depend on the order or number of workers.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Iterable, Iterator, Sequence

import av
import numpy as np
import scipy.io
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from shared.errors import MMCLError
from shared.layouts import KINECT_V1_TO_NTU25_1BASED, NTU25, UTD_TO_KINECT_V1_1BASED
from shared.registry import DEMO, SYSU, UTD_MHAD
from shared.ntu_skeleton import write_ntu_skeleton

__all__ = [
    "MOTIONS", "VIDEO_CODEC", "DemoConfig", "Imperfections", "Motion", "SysuConfig", "UtdConfig",
    "demo_sample_names", "generate_demo", "generate_sysu", "generate_utd", "perform",
]

VIDEO_CODEC = "libx264"  # H.264 in AVI, as NTU's videos
J = {name: i for i, name in enumerate(NTU25.joint_names)}  # NTU-25 joint index by name
RIGHT, LEFT = 1, -1  # side sign = the side's x in the person frame
SIDES = (RIGHT, LEFT)
GRAVITY = np.array([0.0, -9.81, 0.0])


def _side_name(stem: str, side: int) -> str:
    return stem + ("Right" if side == RIGHT else "Left")


def _side(stem: str, side: int) -> int:
    return J[_side_name(stem, side)]


# ============================================================================================
# Random streams and small maths
# ============================================================================================

def _rng(seed: int, *key: int | str) -> np.random.Generator:
    """An independent stream per (seed, key), so results never depend on task order."""
    words = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng(words)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _mix(a: np.ndarray, b: np.ndarray, w: np.ndarray | float) -> np.ndarray:
    """Per-frame blend from a (w = 0) to b (w = 1); w (T,) or scalar, a and b (T, ...)."""
    a, b, w = np.asarray(a, float), np.asarray(b, float), np.asarray(w, float)
    w = w.reshape(w.shape + (1,) * (max(a.ndim, b.ndim) - max(w.ndim, 1))) if w.ndim else w
    return a + (b - a) * w


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero velocity and acceleration at both ends (smootherstep)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def _rotation(yaw, pitch, roll, frames: int) -> np.ndarray:
    """(T, 3, 3) rotations of the person frame (x right, y up, z forward): yaw turns forward to
    the right, pitch leans up forward, roll leans up to the right; applied roll, pitch, yaw."""
    angles = [np.broadcast_to(np.asarray(a, float), (frames,)) for a in (yaw, pitch, roll)]
    angles[2] = -angles[2]  # scipy's z rotation turns +x towards +y; ours leans +y towards +x
    return Rotation.from_euler("YXZ", np.stack(angles, -1)).as_matrix()


def _apply(rot: np.ndarray, v) -> np.ndarray:
    """Rotate a vector (3,) or per-frame vectors (T, 3) by (T, 3, 3) rotations."""
    v = np.broadcast_to(np.asarray(v, float), rot.shape[:-1])
    return np.einsum("tij,tj->ti", rot, v)


def _axes(forward) -> np.ndarray:
    """Rows right, up, forward of a frame standing upright and facing `forward` (horizontal);
    a proper rotation, so (0, 0, 1) gives the identity (the person frame itself)."""
    f = _unit(np.array([forward[0], 0.0, forward[2]], float))
    up = np.array([0.0, 1.0, 0.0])
    return np.stack([np.cross(up, f), up, f])


def _to_parent(points: np.ndarray, origin, forward) -> np.ndarray:
    """Points in a frame at `origin` facing `forward` -> the parent frame."""
    return np.asarray(origin, float) + points @ _axes(forward)


def _to_local(points: np.ndarray, origin, forward) -> np.ndarray:
    return (points - np.asarray(origin, float)) @ _axes(forward).T


def _heading(azimuth_deg: float) -> np.ndarray:
    """Horizontal direction towards a camera standing at this azimuth around the scene origin."""
    a = np.radians(azimuth_deg)
    return np.array([np.sin(a), 0.0, -np.cos(a)])


def _two_bone(root, target, l1: float, l2: float, pole):
    """Analytic two-segment IK: (middle joint, end joint) reaching for target, bending to pole."""
    d = target - root
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    reach = np.clip(dist, abs(l1 - l2) + 1e-3, 0.999 * (l1 + l2))
    cos_a = (l1 * l1 + reach * reach - l2 * l2) / (2 * l1 * reach)
    sin_a = np.sqrt(np.clip(1 - cos_a * cos_a, 0, 1))
    bend = _unit(pole - np.sum(pole * u, -1, keepdims=True) * u)
    return root + l1 * (cos_a * u + sin_a * bend), root + reach * u


# ============================================================================================
# People
# ============================================================================================

@dataclass(frozen=True)
class Look:
    """Colours a person is drawn with (clothes give the RGB stream per-subject appearance)."""

    shirt: tuple[int, int, int]
    trousers: tuple[int, int, int]
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    shoes: tuple[int, int, int] = (40, 36, 34)


_SHIRTS = ((52, 101, 164), (204, 40, 40), (78, 154, 6), (117, 80, 123), (196, 160, 0),
           (60, 64, 70), (206, 92, 0), (225, 225, 220), (0, 128, 128))
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
            height=h, spine_lower=0.170 * h * torso, spine_upper=0.125 * h * torso,
            neck=0.045 * h, head=0.065 * h, shoulder_half=0.100 * h * width,
            shoulder_drop=0.012 * h, hip_half=0.048 * h * width, hip_drop=0.02 * h,
            upper_arm=0.165 * h * arm, forearm=0.145 * h * arm, hand=0.045 * h, tip=0.040 * h,
            thumb=0.030 * h, thigh=0.240 * h * leg, shin=0.230 * h * leg, ankle=0.040 * h,
            foot=0.075 * h, stance=0.05 * h * width + rng.uniform(0.0, 0.06),
            speed=rng.uniform(0.8, 1.25), amplitude=rng.uniform(0.85, 1.15),
            slouch=rng.uniform(-0.02, 0.10), right_on_top=bool(rng.random() < 0.6),
            look=Look(colour(_SHIRTS), colour(_TROUSERS), colour(_SKINS), colour(_HAIR)),
        )

    @property
    def stand_height(self) -> float:
        """SpineBase height when standing, knees almost straight."""
        return self.ankle + 0.985 * (self.thigh + self.shin) + self.hip_drop

    @property
    def arm_length(self) -> float:
        return self.upper_arm + self.forearm


def _performer(seed: int, dataset: str, subject: int) -> Body:
    return Body.sample(_rng(seed, dataset + "-body", subject))


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
        self.rot = _rotation(yaw, np.asarray(pitch) + b.slouch, roll, t)
        self.head_rot = self.rot @ _rotation(0.0, head_pitch, head_roll, t)
        self.pelvis_rot = _rotation(0.4 * np.asarray(yaw), 0.0, 0.0, t)
        jt[:, J["SpineBase"]] = pelvis
        jt[:, J["SpineMid"]] = pelvis + _apply(self.rot, (0, b.spine_lower, -0.01))
        jt[:, J["SpineShoulder"]] = jt[:, J["SpineMid"]] + _apply(self.rot, (0, b.spine_upper, -0.015))
        jt[:, J["Neck"]] = jt[:, J["SpineShoulder"]] + _apply(self.head_rot, (0, b.neck, 0.01))
        jt[:, J["Head"]] = jt[:, J["Neck"]] + _apply(self.head_rot, (0, b.head, 0.015))
        for s in SIDES:
            jt[:, _side("Shoulder", s)] = jt[:, J["SpineShoulder"]] + _apply(
                self.rot, (s * b.shoulder_half, -b.shoulder_drop, -0.01))
            jt[:, _side("Hip", s)] = pelvis + _apply(self.pelvis_rot, (s * b.hip_half, -b.hip_drop, 0))
        return self

    def point(self, joint: str, offset=(0.0, 0.0, 0.0), frame: str = "trunk") -> np.ndarray:
        """A landmark: joint + offset, the offset in the trunk's, the head's or the person frame."""
        rot = {"trunk": self.rot, "head": self.head_rot, "person": None}[frame]
        offset = np.broadcast_to(np.asarray(offset, float), (self.frames, 3))
        return self.joints[:, J[joint]] + (offset if rot is None else _apply(rot, offset))

    def rest_wrist(self, side: int) -> np.ndarray:
        """Where the wrist hangs: below the shoulder whatever the trunk's lean."""
        b = self.body
        return self.joints[:, _side("Shoulder", side)] + np.array(
            [side * 0.035, -0.96 * b.arm_length, 0.03])

    def arm(self, side: int, wrist, pole=(0.3, -1.0, -0.4), hand_bias=(0.0, 0.0, 0.0)) -> Pose:
        """Place one arm reaching for `wrist`; `pole` (trunk frame, x mirrored for the left arm)
        is where the elbow points; `hand_bias` bends the hand away from the forearm's line."""
        b, jt = self.body, self.joints
        mirror = np.array([side, 1.0, 1.0])
        pole = _apply(self.rot, np.asarray(pole, float) * mirror)
        elbow, wrist = _two_bone(jt[:, _side("Shoulder", side)], np.asarray(wrist, float),
                                 b.upper_arm, b.forearm, pole)
        direction = _unit(_unit(wrist - elbow) + _apply(self.rot, np.asarray(hand_bias, float) * mirror))
        hand = wrist + b.hand * direction
        # The thumb points forward and inwards off the hand's line (palm towards the body).
        thumb_dir = self.rot[:, :, 2] - 0.5 * side * self.rot[:, :, 0]
        thumb_dir = _unit(thumb_dir - np.sum(thumb_dir * direction, -1, keepdims=True) * direction)
        jt[:, _side("Elbow", side)] = elbow
        jt[:, _side("Wrist", side)] = wrist
        jt[:, _side("Hand", side)] = hand
        jt[:, _side("HandTip", side)] = hand + b.tip * direction
        jt[:, _side("Thumb", side)] = hand + b.thumb * _unit(0.5 * direction + thumb_dir)
        return self

    def stand_ankle(self, side: int) -> np.ndarray:
        ankle = np.array([side * self.body.stance, self.body.ankle, 0.0])
        return np.broadcast_to(ankle, (self.frames, 3))

    def legs(self, ankles: dict[int, np.ndarray] | None = None) -> Pose:
        """Knees by IK towards the front; ankles default to standing on the floor."""
        b, jt = self.body, self.joints
        for s in SIDES:
            target = (ankles or {}).get(s, self.stand_ankle(s))
            pole = _apply(self.pelvis_rot, (s * 0.15, 0.0, 1.0))
            knee, ankle = _two_bone(jt[:, _side("Hip", s)], target, b.thigh, b.shin, pole)
            toe_out = s * 0.15
            jt[:, _side("Knee", s)] = knee
            jt[:, _side("Ankle", s)] = ankle
            jt[:, _side("Foot", s)] = ankle + _apply(
                self.pelvis_rot, (b.foot * np.sin(toe_out), -0.6 * b.ankle, b.foot * np.cos(toe_out)))
        return self


# ============================================================================================
# Motions
# ============================================================================================

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


@dataclass
class MotionContext:
    """What a motion is built from: performers, a random stream and the clip's clock."""

    body: Body
    rng: np.random.Generator
    frames: int
    fps: float
    partner: Body | None = None

    @property
    def s(self) -> np.ndarray:
        """Normalised time 0..1 over the clip."""
        return np.linspace(0.0, 1.0, self.frames)

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.frames) / self.fps

    def events(self, *base: float, sd: float = 0.03) -> list[float]:
        """Jittered, ordered event times around `base` (normalised time)."""
        shift = self.rng.normal(0, sd)
        times = np.sort(np.asarray(base) + shift + self.rng.normal(0, sd / 2, len(base)))
        return list(np.clip(times, 0.02, 0.98) + np.arange(len(base)) * 1e-3)

    def ease(self, a: float, b: float) -> np.ndarray:
        return _smoothstep((self.s - a) / max(b - a, 1e-3))

    def pulse(self, a: float, b: float, c: float, d: float) -> np.ndarray:
        """0 before a, rising to 1 at b, held until c, back to 0 at d."""
        return self.ease(a, b) * (1 - self.ease(c, d))

    def vary(self, offset, sd: float = 0.02) -> np.ndarray:
        """A target offset scaled by the performer's amplitude, with per-clip jitter."""
        return np.asarray(offset, float) * self.body.amplitude + self.rng.normal(0, sd, 3)

    def standing_pelvis(self, body: Body | None = None) -> np.ndarray:
        """SpineBase above the feet with a slow idle sway."""
        body = body or self.body
        f, phase = self.rng.uniform(0.2, 0.6, 2), self.rng.uniform(0, 2 * np.pi, 2)
        sway = np.stack([0.010 * np.sin(2 * np.pi * f[0] * self.t + phase[0]),
                         0.003 * np.sin(4 * np.pi * f[0] * self.t + phase[1]),
                         0.008 * np.sin(2 * np.pi * f[1] * self.t + phase[1])], -1)
        return np.array([0.0, body.stand_height, 0.0]) + sway

    def pose(self, body: Body | None = None) -> Pose:
        return Pose(body or self.body, self.frames)


def _hand_to_head(ctx: MotionContext, target, hold: tuple[float, ...], pole, head_pitch, head_roll):
    """Shared shape of drinking and phoning: the right hand goes to a point by the head."""
    a, up, down, end = ctx.events(*hold)
    w = ctx.pulse(a, up, down, end)
    pose = ctx.pose()
    pose.trunk(ctx.standing_pelvis(), pitch=0.03 * w, head_pitch=head_pitch * w, head_roll=head_roll * w)
    goal = pose.point("Head", ctx.vary(target, sd=0.015), frame="head")
    pose.arm(RIGHT, _mix(pose.rest_wrist(RIGHT), goal, w), pole=pole,
             hand_bias=np.outer(w, (-0.2, 1.3, 0.1)))
    pose.arm(LEFT, pose.rest_wrist(LEFT)).legs()
    return pose


def _drink_water(ctx: MotionContext) -> Scene:
    # Cup to the mouth, head tilting back a little while drinking.
    tilt = -ctx.rng.uniform(0.05, 0.25)
    pose = _hand_to_head(ctx, (0.02, -0.15, 0.10), (0.14, 0.34, 0.62, 0.84),
                         pole=(0.5, -1.0, 0.2), head_pitch=tilt, head_roll=0.0)
    cup = pose.point("HandRight", (0.0, 0.02, 0.04))
    return Scene([Actor(pose.joints)], [Prop("cup", cup)])


def _phone_call(ctx: MotionContext) -> Scene:
    # Phone to the ear: the hand ends a few centimetres from where drinking puts it.
    lean = ctx.rng.uniform(0.0, 0.15)
    pose = _hand_to_head(ctx, (0.08, -0.10, 0.01), (0.12, 0.30, 0.70, 0.88),
                         pole=(0.9, -0.9, 0.0), head_pitch=0.03, head_roll=lean)
    phone = pose.point("HandRight", (-0.01, 0.03, 0.0))
    return Scene([Actor(pose.joints)], [Prop("phone", phone)])


def _chair(seat_height: float, seat_z: float) -> Prop:
    """A chair behind the performer (person frame): seat, back rest and four legs."""
    w, d, back = 0.23, 0.21, 0.45
    x, z = np.array([-w, w, w, -w]), np.array([d, d, -d, -d]) + seat_z
    seat = np.stack([x, np.full(4, seat_height), z], -1)
    top, rear = seat_height + back, seat_z - d
    rest = np.array([[-w, seat_height, rear], [w, seat_height, rear],
                     [w, top, rear - 0.04], [-w, top, rear - 0.04]])
    legs = tuple(np.array([[cx, 0.0, cz], [cx + 0.03, 0.0, cz],
                           [cx + 0.03, seat_height, cz], [cx, seat_height, cz]])
                 for cx, cz in zip(x * 0.9, z, strict=True))
    centre = np.broadcast_to([0.0, seat_height, seat_z], (1, 3))
    return Prop("chair", centre, (*legs, seat, rest))


def _sit_transition(ctx: MotionContext, sitting_down: bool) -> Scene:
    """Stand -> sit (or the reverse): hips back then down, trunk leaning forward on the way."""
    b = ctx.body
    a, z = ctx.events(0.22, 0.72, sd=0.04)
    p = ctx.ease(a, z)
    p = p if sitting_down else 1 - p
    back, drop = _smoothstep(p / 0.7), _smoothstep((p - 0.2) / 0.8)
    seat_y = b.ankle + b.shin + 0.06 + b.hip_drop
    seat_z = -0.92 * b.thigh
    stand = ctx.standing_pelvis()
    pelvis = np.stack([stand[:, 0] * (1 - p), _mix(stand[:, 1], np.full(ctx.frames, seat_y), drop),
                       _mix(stand[:, 2], np.full(ctx.frames, seat_z), back)], -1)
    lean = ctx.rng.uniform(0.45, 0.7) * b.amplitude
    pose = ctx.pose()
    pose.trunk(pelvis, pitch=lean * np.sin(np.pi * p) ** 1.5 + 0.04 * p, head_pitch=0.1 * p)
    on_thighs = _smoothstep((p - 0.3) / 0.6)
    for s in SIDES:
        thigh = pose.point("SpineShoulder", ctx.vary((s * 0.14, -0.40, 0.30)))
        pose.arm(s, _mix(pose.rest_wrist(s), thigh, on_thighs))
    pose.legs()
    chair = _chair(seat_height=seat_y - b.hip_drop - 0.08, seat_z=seat_z - 0.04)
    return Scene([Actor(pose.joints)], [chair])


def _sitting_down(ctx: MotionContext) -> Scene:
    return _sit_transition(ctx, sitting_down=True)


def _standing_up(ctx: MotionContext) -> Scene:
    return _sit_transition(ctx, sitting_down=False)


def _squat_down(ctx: MotionContext) -> Scene:
    # Hips down and back, trunk forward, both arms stretched out in front (as UTD's squat).
    b = ctx.body
    a, down, up, end = ctx.events(0.12, 0.40, 0.62, 0.90)
    w = ctx.pulse(a, down, up, end)
    depth = float(np.clip(ctx.rng.normal(0.85, 0.1), 0.6, 1.0)) * b.amplitude
    low = b.ankle + 0.45 * b.shin + b.hip_drop
    pelvis = ctx.standing_pelvis()
    pelvis[:, 1] = _mix(pelvis[:, 1], np.full(ctx.frames, low), np.minimum(depth * w, 1.0))
    pelvis[:, 2] -= 0.22 * depth * w
    pose = ctx.pose().trunk(pelvis, pitch=0.55 * depth * w)
    arms = ctx.ease(a, a + 0.6 * (down - a)) * (1 - ctx.ease(up + 0.3 * (end - up), end))
    for s in SIDES:
        ahead = pose.point(_side_name("Shoulder", s), ctx.vary((0.0, -0.03, 0.92 * b.arm_length)),
                           frame="person")
        pose.arm(s, _mix(pose.rest_wrist(s), ahead, arms), pole=(0.2, -1.0, -0.2))
    pose.legs()
    return Scene([Actor(pose.joints)])


def _hand_waving(ctx: MotionContext) -> Scene:
    # Right hand raised beside the head, forearm swinging side to side.
    a, up, down, end = ctx.events(0.10, 0.26, 0.76, 0.92)
    w = ctx.pulse(a, up, down, end)
    cycles = ctx.rng.integers(3, 6)
    phase = 2 * np.pi * cycles * np.clip((ctx.s - up) / (down - up), 0, 1)
    swing = np.sin(phase) * ctx.ease(a, up)
    pose = ctx.pose().trunk(ctx.standing_pelvis(), roll=-0.03 * w)
    centre = pose.point("ShoulderRight", ctx.vary((0.12, 0.32, 0.12)))
    side_to_side = _apply(pose.rot, np.stack([0.11 * swing, 0.02 * np.cos(2 * phase), 0 * swing], -1))
    pose.arm(RIGHT, _mix(pose.rest_wrist(RIGHT), centre + side_to_side, w), pole=(1.0, -0.7, -0.3),
             hand_bias=np.outer(w, (0.0, 1.5, 0.0)) + np.outer(0.4 * swing * w, (1.0, 0.0, 0.0)))
    pose.arm(LEFT, pose.rest_wrist(LEFT)).legs()
    return Scene([Actor(pose.joints)])


def _cross_arms(ctx: MotionContext) -> Scene:
    # Each hand to the opposite upper arm, held, released.
    a, cross, release, end = ctx.events(0.14, 0.34, 0.72, 0.90)
    w = ctx.pulse(a, cross, release, end)
    top = RIGHT if ctx.body.right_on_top else LEFT
    pose = ctx.pose().trunk(ctx.standing_pelvis(), pitch=-0.03 * w)
    for s in SIDES:
        goal = pose.point("SpineShoulder", ctx.vary((-s * 0.12, -0.19, 0.15 + 0.035 * (s == top))))
        pose.arm(s, _mix(pose.rest_wrist(s), goal, w), pole=(1.0, -0.4, 0.1),
                 hand_bias=np.outer(w, (-1.2, 0.2, 0.0)))
    pose.legs()
    return Scene([Actor(pose.joints)])


def _shoot_basket(ctx: MotionContext) -> Scene:
    # Ball from the chest to above the head, knees dip then extend, release with a wrist flick.
    b = ctx.body
    g0, g1, dip, rel, d0, d1 = ctx.events(0.08, 0.22, 0.38, 0.56, 0.74, 0.92)
    hold = ctx.ease(g0, g1)
    mid = 0.5 * (dip + rel)
    knees = 0.09 * b.amplitude * ctx.pulse(g1, dip, dip, rel)
    toes = 0.05 * ctx.pulse(mid, rel, rel, rel + 0.1)
    pelvis = ctx.standing_pelvis()
    pelvis[:, 1] += toes - knees
    pose = ctx.pose().trunk(pelvis, pitch=0.9 * knees - toes, head_pitch=-0.15 * ctx.ease(dip, rel))
    chest, above, release = (ctx.vary(v, sd=0.015) for v in
                             ((0.03, -0.16, 0.32), (0.10, 0.30, 0.20), (0.12, 0.55, 0.34)))
    path = _mix(_mix(np.broadcast_to(chest, (ctx.frames, 3)), np.broadcast_to(above, (ctx.frames, 3)),
                     ctx.ease(dip, mid)), np.broadcast_to(release, (ctx.frames, 3)), ctx.ease(mid, rel))
    ball = pose.point("SpineShoulder", path)
    lower = ctx.ease(d0, d1)
    right = pose.point("SpineShoulder", path + (0.02, -0.07, -0.08))
    left = pose.point("SpineShoulder", path + (-0.13, -0.03, -0.03))
    flick = ctx.ease(rel, rel + 0.06)
    pose.arm(RIGHT, _mix(_mix(pose.rest_wrist(RIGHT), right, hold), pose.rest_wrist(RIGHT), lower),
             pole=(0.4, -1.0, 0.3), hand_bias=np.outer(hold * (1 - flick), (0, 1.0, -0.5))
             + np.outer(flick * (1 - lower), (0, -0.6, 1.5)))
    left_w = hold * (1 - ctx.ease(rel - 0.04, rel + 0.12))
    pose.arm(LEFT, _mix(pose.rest_wrist(LEFT), left, left_w), pole=(0.8, -1.0, 0.0),
             hand_bias=np.outer(left_w, (-1.0, 0.5, 0.0)))
    pose.legs({s: pose.stand_ankle(s) + np.outer(toes, (0, 1, 0)) for s in SIDES})
    # After the release the ball flies towards the basket, in front and above.
    k = int(np.searchsorted(ctx.s, rel))
    if k < ctx.frames:
        dt = ctx.t[k:] - ctx.t[k]
        v = np.array([0.0, ctx.rng.uniform(3.2, 4.2), ctx.rng.uniform(2.4, 3.2)])
        ball[k:] = ball[k] + np.outer(dt, v) + 0.5 * np.outer(dt * dt, GRAVITY)
    return Scene([Actor(pose.joints)], [Prop("ball", ball)])


def _handshaking(ctx: MotionContext) -> Scene:
    # Two people facing each other, right hands meet between them and shake up and down.
    partner = ctx.partner or ctx.body
    bodies = (ctx.body, partner)
    gap, skew = ctx.rng.uniform(0.75, 0.9), 0.12
    origins = ((-gap / 2, 0.0, skew), (gap / 2, 0.0, -skew))  # each grip right of centre
    forwards = ((1.0, 0.0, 0.0), (-1.0, 0.0, 0.0))
    a, meet, part, end = ctx.events(0.12, 0.34, 0.68, 0.86)
    shakes = ctx.rng.integers(2, 5)
    shake = 0.035 * np.sin(2 * np.pi * shakes * np.clip((ctx.s - meet) / (part - meet), 0, 1))
    height = 0.6 * np.mean([b.height for b in bodies])
    grip = np.stack([np.zeros(ctx.frames), height + shake, np.zeros(ctx.frames)], -1)
    actors = []
    for body, origin, forward in zip(bodies, origins, forwards, strict=True):
        delay = ctx.rng.normal(0, 0.02, 2)
        w = ctx.pulse(a + delay[0], meet, part, end + delay[1])
        pelvis = ctx.standing_pelvis(body) + np.outer(w, (0.0, 0.0, 0.05))
        pose = ctx.pose(body).trunk(pelvis, pitch=0.12 * w)
        hand = _to_local(grip, origin, forward) - (0.0, 0.0, 0.03)
        pose.arm(RIGHT, _mix(pose.rest_wrist(RIGHT), hand, w), pole=(0.3, -1.0, -0.2),
                 hand_bias=np.outer(w, (-0.3, 0.0, 0.3)))
        pose.arm(LEFT, pose.rest_wrist(LEFT)).legs()
        actors.append(Actor(pose.joints, origin, forward))
    return Scene(actors)


@dataclass(frozen=True)
class Motion:
    ntu_action: int
    build: Callable[[MotionContext], Scene]
    duration: float  # typical clip length, as a fraction of the frame range, before speed
    mutual: bool = False


MOTIONS: dict[int, Motion] = {m.ntu_action: m for m in (
    Motion(1, _drink_water, 0.55),
    Motion(8, _sitting_down, 0.55),
    Motion(9, _standing_up, 0.50),
    Motion(23, _hand_waving, 0.45),
    Motion(28, _phone_call, 0.65),
    Motion(58, _handshaking, 0.50, mutual=True),
    Motion(63, _shoot_basket, 0.50),
    Motion(80, _squat_down, 0.55),
    Motion(96, _cross_arms, 0.50),
)}


def _clip_length(motion: Motion, body: Body, rng: np.random.Generator, frames: tuple[int, int]) -> int:
    lo, hi = frames
    q = np.clip(motion.duration / body.speed + rng.normal(0, 0.15), 0, 1)
    return int(lo + round(q * (hi - lo)))


def perform(motion: Motion, body: Body, rng: np.random.Generator, frames: int, fps: float,
            facing: np.ndarray, origin=(0.0, 0.0, 0.0), partner: Body | None = None) -> Performance:
    """Build a motion and place it in the world: the scene at `origin`, facing `facing`."""
    scene = motion.build(MotionContext(body, rng, frames, fps, partner))
    joints = np.stack([
        _to_parent(_to_parent(a.joints, a.origin, a.forward), origin, facing) for a in scene.actors], 1)
    props = [p.moved(lambda x: _to_parent(x, origin, facing)) for p in scene.props]
    looks = [body.look] + ([partner.look] if len(scene.actors) > 1 and partner else [])
    return Performance(joints, np.asarray(facing, float), props, looks)


# ============================================================================================
# Cameras and measurement
# ============================================================================================

@dataclass(frozen=True)
class Intrinsics:
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def scaled(self, width: int, height: int) -> Intrinsics:
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) camera coordinates -> (..., 2) pixels (y up in space, down in the image)."""
        z = np.maximum(points[..., 2], 1e-3)
        return np.stack([self.cx + self.fx * points[..., 0] / z,
                         self.cy - self.fy * points[..., 1] / z], -1)


KINECT_V2_COLOR = Intrinsics(1060.0, 1060.0, 960.0, 540.0, 1920, 1080)
# The Kinect v1 SDK's nominal colour focal length (NUI_CAMERA_COLOR_NOMINAL_FOCAL_LENGTH_IN_PIXELS),
# which shared.utd_skeleton also projects with.
KINECT_V1_COLOR = Intrinsics(531.15, 531.15, 320.0, 240.0, 640, 480)


@dataclass(frozen=True)
class Camera:
    """A Kinect: camera space has x to the sensor's left (a reflection of the world), so a person
    facing it has their right side at +x and the colour image is mirrored, as Kinect's."""

    position: np.ndarray  # (3,) world
    rotation: np.ndarray  # (3, 3) rows: the camera's x (sensor's left), up, forward in the world
    intrinsics: Intrinsics

    @classmethod
    def look_at(cls, position, target, intrinsics: Intrinsics) -> Camera:
        position = np.asarray(position, float)
        forward = _unit(np.asarray(target, float) - position)
        left = _unit(np.cross(forward, [0.0, 1.0, 0.0]))
        return cls(position, np.stack([left, np.cross(left, forward), forward]), intrinsics)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return (points - self.position) @ self.rotation.T

    def view_angle(self, facing: np.ndarray) -> float:
        """|sin| of the angle between where the scene faces and the camera: 0 front, 1 side."""
        towards = _unit(self.position * np.array([1.0, 0.0, 1.0]))
        return float(np.linalg.norm(np.cross(_unit(facing), towards)))


NTU_CAMERA_AZIMUTHS = {1: -45.0, 2: 0.0, 3: 45.0}


def _kinect_rig(seed: int, key: str, azimuths: dict[int, float], intrinsics: Intrinsics,
                distance: tuple[float, float], height: tuple[float, float]) -> dict[int, Camera]:
    """Cameras at the same height and distance around the scene origin, aimed at the performer."""
    rng = _rng(seed, key)
    d, h, aim = rng.uniform(*distance), rng.uniform(*height), rng.uniform(0.85, 1.0)
    return {c: Camera.look_at(_heading(az) * d + (0.0, h, 0.0), (0.0, aim, 0.0), intrinsics)
            for c, az in azimuths.items()}


# Kinect-like noise (metres): larger on hands and feet, along depth, and in side views.
_JOINT_NOISE = np.full(NTU25.num_joints, 0.006)
_JOINT_NOISE[[J[n] for n in ("HandLeft", "HandRight", "HandTipLeft", "HandTipRight",
                              "ThumbLeft", "ThumbRight")]] = 0.015
_JOINT_NOISE[[J[n] for n in ("WristLeft", "WristRight", "FootLeft", "FootRight")]] = 0.010


def _measure(joints_cam: np.ndarray, rng: np.random.Generator, scale: float) -> np.ndarray:
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


def _record(joints: np.ndarray, intrinsics: Intrinsics, rng: np.random.Generator,
            faults: Imperfections) -> Recording:
    t, b = joints.shape[:2]
    ids = rng.integers(1000, 60000) + np.arange(b)
    rec = Recording(joints, intrinsics.project(joints), ids, np.ones((t, b), bool))
    if rng.random() < faults.noise_body_rate:
        rec = _add_noise_body(rec, intrinsics, rng, faults.max_noise_frames)
    if rng.random() < faults.empty_frame_rate:
        lost = np.sort(rng.choice(t, size=int(rng.integers(1, 3)), replace=False))
        rec.present[lost] = False
        rec.empty_frames = tuple(int(i) for i in lost)
    return rec


def _add_noise_body(rec: Recording, intrinsics: Intrinsics, rng: np.random.Generator,
                    max_frames: int) -> Recording:
    """A spurious short-lived 'body': a wide, flat blob of jittering joints (furniture, a coat)."""
    t = rec.joints.shape[0]
    length = int(rng.integers(2, max_frames + 1))
    start = int(rng.integers(0, max(t - length, 0) + 1))
    centre = np.array([rng.choice([-1, 1]) * rng.uniform(0.8, 1.4), rng.uniform(-0.6, 0.1),
                       rng.uniform(2.8, 4.5)])
    blob = centre + rng.normal(0, 1, (t, NTU25.num_joints, 3)) * (0.35, 0.12, 0.08)
    joints = np.concatenate([rec.joints, blob[:, None]], 1)
    present = np.concatenate([rec.present, np.zeros((t, 1), bool)], 1)
    present[start:start + length, -1] = True
    ids = np.append(rec.body_ids, rec.body_ids.max() + int(rng.integers(5, 50)))
    return Recording(joints, intrinsics.project(joints), ids, present, noise_body=True)


# ============================================================================================
# Rendering
# ============================================================================================

@dataclass(frozen=True)
class Room:
    """Colours of the room a setup is filmed in."""

    walls: tuple[int, int, int]
    back_wall: tuple[int, int, int]
    floor: tuple[int, int, int]
    door: tuple[int, int, int]
    poster: tuple[int, int, int]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Room:
        def tone(lo: int, hi: int) -> tuple[int, int, int]:
            return tuple(int(c) for c in rng.integers(lo, hi, 3))

        return cls(walls=tone(150, 215), back_wall=tone(165, 235), floor=tone(80, 150),
                   door=tone(90, 160), poster=tone(30, 230))

    def faces(self) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """World polygons, drawn in order: walls, floor, door, poster (camera 2 looks along +z)."""
        x, back, near, top = 3.6, 2.7, -6.0, 3.0

        def quad(*corners):
            return np.array(corners, float)

        return [
            (quad([-x, 0, near], [-x, 0, back], [-x, top, back], [-x, top, near]), self.walls),
            (quad([x, 0, near], [x, 0, back], [x, top, back], [x, top, near]), self.walls),
            (quad([-x, 0, back], [x, 0, back], [x, top, back], [-x, top, back]), self.back_wall),
            (quad([-x, 0, near], [x, 0, near], [x, 0, back], [-x, 0, back]), self.floor),
            (quad([0.9, 0, back - 0.01], [1.8, 0, back - 0.01], [1.8, 2.05, back - 0.01],
                  [0.9, 2.05, back - 0.01]), self.door),
            (quad([-1.7, 1.1, back - 0.01], [-0.9, 1.1, back - 0.01], [-0.9, 1.75, back - 0.01],
                  [-1.7, 1.75, back - 0.01]), self.poster),
        ]


def _clip_near(poly: np.ndarray, near: float = 0.05) -> np.ndarray:
    """Sutherland-Hodgman clip of a camera-space polygon to z >= near."""
    out = []
    for a, b in zip(poly, np.roll(poly, -1, 0), strict=True):
        if a[2] >= near:
            out.append(a)
        if (a[2] >= near) != (b[2] >= near):
            out.append(a + (b - a) * (near - a[2]) / (b[2] - a[2]))
    return np.array(out).reshape(-1, 3)


# (joint a, joint b, colour part, width in metres), drawn as round-capped lines.
_LIMBS = tuple(
    (a + side, b + side, part, width)
    for side in ("Left", "Right")
    for a, b, part, width in (
        ("Hip", "Knee", "trousers", 0.14), ("Knee", "Ankle", "trousers", 0.11),
        ("Ankle", "Foot", "shoes", 0.08), ("Shoulder", "Elbow", "shirt", 0.10),
        ("Elbow", "Wrist", "skin", 0.075), ("Wrist", "HandTip", "skin", 0.065))
) + (("SpineShoulder", "Neck", "skin", 0.09),)
_TORSO = [J[n] for n in ("ShoulderLeft", "ShoulderRight", "HipRight", "HipLeft")]
_PROP_SIZE = {"cup": (0.09, 0.12), "phone": (0.075, 0.15), "ball": (0.24, 0.24)}  # width, height
_HELD = ("cup", "phone")


class Painter:
    """Draws one camera's view: a room, props and the people (as thick stick figures).

    `supersample` > 1 draws at that many times the size and reduces, for smooth edges (costs
    about 1.6x the time at 2)."""

    def __init__(self, camera: Camera, size: tuple[int, int], room: Room, supersample: int = 1):
        self.camera, self.size, self.ss = camera, size, supersample
        self.k = camera.intrinsics.scaled(size[0] * supersample, size[1] * supersample)
        self.background = Image.new("RGB", (self.k.width, self.k.height), room.walls)
        draw = ImageDraw.Draw(self.background)
        for poly, colour in room.faces():
            self._polygon(draw, camera.to_camera(poly), colour)

    def _polygon(self, draw: ImageDraw.ImageDraw, poly_cam: np.ndarray, colour, outline=None) -> None:
        clipped = _clip_near(poly_cam)
        if len(clipped) >= 3:
            draw.polygon([tuple(p) for p in self.k.project(clipped)], fill=colour, outline=outline)

    def frame(self, joints_cam: np.ndarray, looks: Sequence[Look],
              props_cam: Sequence[tuple[Prop, int]]) -> np.ndarray:
        """joints_cam (B, 25, 3) for one frame; props_cam: (prop in camera coordinates, frame)."""
        image = self.background.copy()
        draw = ImageDraw.Draw(image)
        items: list[tuple[float, Callable[[], None]]] = []
        for prop, t in props_cam:
            if prop.kind == "chair":  # furniture stands behind the person: drawn first
                for face in prop.faces:
                    self._polygon(draw, face, (120, 78, 40), outline=(70, 45, 20))
            else:
                items.append(self._prop_item(draw, prop.kind, prop.track[min(t, len(prop.track) - 1)]))
        for body, look in zip(joints_cam, looks, strict=True):
            items.extend(self._body_items(draw, body, look))
        for _, paint in sorted(items, key=lambda it: -it[0]):  # far first
            paint()
        if self.ss > 1:
            image = image.reduce(self.ss)
        return np.asarray(image)

    def _px(self, metres: float, depth: float) -> float:
        return max(1.0, metres * self.k.fx / max(depth, 0.1))

    def _body_items(self, draw, joints: np.ndarray, look: Look):
        if np.any(joints[:, 2] < 0.3):
            return []
        uv, z = self.k.project(joints), joints[:, 2]
        colours = {"shirt": look.shirt, "trousers": look.trousers, "skin": look.skin,
                   "shoes": look.shoes}
        items = []

        def limb(a: int, b: int, colour, width: float) -> Callable[[], None]:
            def paint() -> None:
                draw.line([tuple(uv[a]), tuple(uv[b])], fill=colour, width=int(round(width)))
                for j in (a, b):
                    r = width / 2
                    draw.ellipse([uv[j][0] - r, uv[j][1] - r, uv[j][0] + r, uv[j][1] + r], fill=colour)
            return paint

        for a, b, part, metres in _LIMBS:
            ia, ib = J[a], J[b]
            depth = 0.5 * (z[ia] + z[ib])
            items.append((depth, limb(ia, ib, colours[part], self._px(metres, depth))))
        torso = [tuple(uv[j]) for j in _TORSO]
        items.append((float(z[_TORSO].mean()) + 0.03,
                      lambda: draw.polygon(torso, fill=look.shirt, outline=look.shirt)))
        head, r = uv[J["Head"]], self._px(0.105, z[J["Head"]])

        def paint_head() -> None:
            draw.ellipse([head[0] - r, head[1] - r, head[0] + r, head[1] + r], fill=look.skin)
            draw.chord([head[0] - r, head[1] - r, head[0] + r, head[1] + r], 180, 360, fill=look.hair)
        items.append((float(z[J["Head"]]), paint_head))
        return items

    def _prop_item(self, draw, kind: str, centre: np.ndarray) -> tuple[float, Callable[[], None]]:
        depth = float(centre[2])
        if depth < 0.3:
            return depth, lambda: None
        (u, v), (w, h) = self.k.project(centre), (self._px(m, depth) / 2 for m in _PROP_SIZE[kind])
        box = [u - w, v - h, u + w, v + h]

        def paint() -> None:
            if kind == "ball":
                draw.ellipse(box, fill=(230, 110, 30), outline=(70, 35, 10))
                draw.line([u - w, v, u + w, v], fill=(70, 35, 10), width=max(1, int(w / 8)))
            elif kind == "cup":
                draw.rectangle(box, fill=(240, 240, 235), outline=(90, 90, 90))
                draw.rectangle([u - w, v - h / 3, u + w, v + h / 5], fill=(200, 40, 40))
            else:  # phone: dark body, lit screen
                draw.rectangle(box, fill=(25, 25, 30))
                draw.rectangle([u - 0.7 * w, v - 0.8 * h, u + 0.7 * w, v + 0.7 * h], fill=(80, 150, 230))
        # Held objects show in front of the hand and head around them (the point of the props is
        # that the video shows them); a thrown ball is at its true depth.
        return depth - (0.3 if kind in _HELD else 0.0), paint


def _render(performance: Performance, camera: Camera, size: tuple[int, int],
            room: Room) -> Iterator[np.ndarray]:
    """The video frames of one performance as seen by one camera (noise-free: the real scene)."""
    painter = Painter(camera, size, room)
    joints = camera.to_camera(performance.joints)
    props = [p.moved(camera.to_camera) for p in performance.props]
    for t in range(joints.shape[0]):
        yield painter.frame(joints[t], performance.looks, [(p, t) for p in props])


def _write_video(path: Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int) -> int:
    """H.264 in AVI without B-frames (AVI has no presentation timestamps); returns frames written."""
    n = 0
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream(VIDEO_CODEC, rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.options = {"preset": "superfast", "crf": "24", "bf": "0"}
        stream.codec_context.thread_count = 1  # the process pool is the parallelism
        for array in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
            n += 1
        container.mux(stream.encode())
    return n


# ============================================================================================
# Kinect v1 layouts (UTD-MHAD, SYSU)
# ============================================================================================

# NTU-25 joint (0-based) that each Kinect v1 joint is read from: the inverse of the joints that
# shared.layouts copies from v1 into NTU-25.
_V1_FROM_NTU25 = np.array(sorted(
    (next(iter(row)) - 1, ntu - 1) for ntu, row in KINECT_V1_TO_NTU25_1BASED.items()
    if len(row) == 1 and next(iter(row.values())) == 1.0)).T[1]
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


def _single_take(seed: int, dataset: str, subject: int, key: tuple[int, ...], ntu_action: int,
                 frames: tuple[int, int], fps: float, camera: Camera):
    """One performer facing a single Kinect v1 (UTD-MHAD, SYSU): (performance, measured joints
    (T, 25, 3) in camera coordinates). Kinect v1 is noisier than v2."""
    motion = MOTIONS[ntu_action]
    body = _performer(seed, dataset, subject)
    rng = _rng(seed, dataset, subject, *key)
    length = _clip_length(motion, body, rng, frames)
    facing = _heading(rng.normal(0, 8.0))
    origin = (rng.uniform(-0.15, 0.15), 0.0, rng.uniform(-0.2, 0.2))
    performance = perform(motion, body, rng, length, fps, facing, origin)
    cam_joints = camera.to_camera(performance.joints)
    measured = _measure(cam_joints, _rng(seed, dataset + "-measure", subject, *key), 1.4)
    return performance, measured[:, 0]


# ============================================================================================
# Configurations and orchestration
# ============================================================================================

@dataclass(frozen=True)
class DemoConfig:
    subjects: tuple[int, ...] = (1, 2, 3, 4, 5)
    cameras: tuple[int, ...] = (1, 2, 3)
    replications: tuple[int, ...] = (1, 2)
    actions: tuple[int, ...] = tuple(c.action for c in DEMO.classes)
    frames: tuple[int, int] = (40, 80)  # clip length range, inclusive
    video_size: tuple[int, int] = (320, 180)
    fps: int = 30
    seed: int = 0
    faults: Imperfections = field(default_factory=Imperfections)

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        if unknown := sorted(set(self.cameras) - set(NTU_CAMERA_AZIMUTHS)):
            raise MMCLError(f"demo cameras are 1, 2 and 3; got {unknown}")
        if unknown := sorted(set(self.actions) - set(MOTIONS)):
            raise MMCLError(f"no demo motion for NTU actions {unknown}; known: {sorted(MOTIONS)}")
        if any(not 1 <= v <= 999 for v in (*self.subjects, *self.replications)):
            raise MMCLError("subjects and replications must be in 1..999 (3-digit NTU names)")

    @staticmethod
    def setup_of(subject: int) -> int:
        """Odd subjects are filmed in setup 1, even ones in setup 2."""
        return 1 if subject % 2 else 2

    def name(self, subject: int, camera: int, replication: int, action: int) -> str:
        return (f"S{self.setup_of(subject):03d}C{camera:03d}P{subject:03d}"
                f"R{replication:03d}A{action:03d}")

    def takes(self) -> list[tuple[int, int, int]]:
        """(subject, replication, action): one performance, filmed by every camera."""
        return [(s, r, a) for s in self.subjects for r in self.replications for a in self.actions]

    def names(self) -> list[str]:
        return sorted(self.name(s, c, r, a) for s, r, a in self.takes() for c in self.cameras)


@dataclass(frozen=True)
class UtdConfig:
    subjects: tuple[int, ...] = (1, 2, 3, 4)
    trials: tuple[int, ...] = (1, 2)
    actions: tuple[int, ...] = tuple(c.action for c in UTD_MHAD.classes if c.ntu_id in MOTIONS)
    frames: tuple[int, int] = (40, 80)
    video_size: tuple[int, int] = (640, 480)
    fps: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        ntu = {c.action: c.ntu_id for c in UTD_MHAD.classes}
        if bad := [a for a in self.actions if ntu.get(a) not in MOTIONS]:
            raise MMCLError(f"no demo motion for UTD-MHAD actions {bad}; known: "
                            f"{[a for a, n in ntu.items() if n in MOTIONS]}")


@dataclass(frozen=True)
class SysuConfig:
    subjects: tuple[int, ...] = (1, 2, 3, 4)
    activities: tuple[int, ...] = tuple(c.action for c in SYSU.classes if c.ntu_id in MOTIONS)
    frames: tuple[int, int] = (40, 80)
    image_size: tuple[int, int] = (640, 480)
    fps: int = 30
    seed: int = 0
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        ntu = {c.action: c.ntu_id for c in SYSU.classes}
        if bad := [a for a in self.activities if ntu.get(a) not in MOTIONS]:
            raise MMCLError(f"no demo motion for SYSU activities {bad}; known: "
                            f"{[a for a, n in ntu.items() if n in MOTIONS]}")


def _check_frames(frames: tuple[int, int]) -> None:
    lo, hi = frames
    if not 12 <= lo <= hi:
        raise MMCLError(f"frames must be a range (lo, hi) with 12 <= lo <= hi, got {frames}")


def _ntu_take(config: DemoConfig, root: Path, subject: int, replication: int, action: int) -> list[dict]:
    """Perform one take and write every camera's skeleton file and video."""
    motion = MOTIONS[action]
    body = _performer(config.seed, "ntu", subject)
    rng = _rng(config.seed, "ntu", subject, replication, action)
    length = _clip_length(motion, body, rng, config.frames)
    partner = (Body.sample(_rng(config.seed, "ntu-partner", subject, replication))
               if motion.mutual else None)
    # As in NTU: replication 1 faces camera 1, replication 2 camera 3; pairs face camera 2.
    azimuth = 0.0 if motion.mutual else NTU_CAMERA_AZIMUTHS[1 if replication % 2 else 3]
    facing = _heading(azimuth + rng.normal(0, 8.0))
    origin = (rng.uniform(-0.15, 0.15), 0.0, rng.uniform(-0.15, 0.15))
    performance = perform(motion, body, rng, length, config.fps, facing, origin, partner)

    setup = config.setup_of(subject)
    rig = _kinect_rig(config.seed, f"ntu-setup-{setup}", NTU_CAMERA_AZIMUTHS, KINECT_V2_COLOR,
                      distance=(2.8, 3.4), height=(0.9, 1.4))
    room = Room.sample(_rng(config.seed, "ntu-room", setup))
    out = []
    for c in config.cameras:
        camera, name = rig[c], config.name(subject, c, replication, action)
        rng_c = _rng(config.seed, "ntu-measure", subject, replication, action, c)
        measured = _measure(camera.to_camera(performance.joints), rng_c,
                            1.0 + 0.6 * camera.view_angle(performance.forward))
        rec = _record(measured, camera.intrinsics, rng_c, config.faults)
        skeleton = root / "nturgb+d_skeletons" / f"{name}.skeleton"
        write_ntu_skeleton(skeleton, rec.joints, rec.color_xy, rec.body_ids, rec.present)
        video = root / "nturgb+d_rgb" / f"{name}_rgb.avi"
        frames = _render(performance, camera, config.video_size, room)
        _write_video(video, frames, config.video_size, config.fps)
        out.append({"name": name, "frames": length, "bodies": performance.joints.shape[1],
                    "noise_body": rec.noise_body, "empty_frames": list(rec.empty_frames),
                    "skeleton_bytes": skeleton.stat().st_size, "video_bytes": video.stat().st_size})
    return out


def _utd_take(config: UtdConfig, root: Path, action: int, subject: int, trial: int) -> list[dict]:
    ntu_action = UTD_MHAD.classes[UTD_MHAD.label_of_action(action)].ntu_id
    camera = _kinect_rig(config.seed, "utd-camera", {1: 0.0}, KINECT_V1_COLOR,
                         distance=(2.6, 3.0), height=(0.9, 1.2))[1]
    performance, measured = _single_take(config.seed, "utd", subject, (action, trial), ntu_action,
                                         config.frames, config.fps, camera)
    name = f"a{action}_s{subject}_t{trial}"
    skeleton = root / "Skeleton" / f"{name}_skeleton.mat"
    d_skel = kinect_v1_to_utd(ntu25_to_kinect_v1(measured)).transpose(1, 2, 0)  # (20, 3, T)
    scipy.io.savemat(skeleton, {"d_skel": d_skel})
    video = root / "RGB" / f"{name}_color.avi"
    room = Room.sample(_rng(config.seed, "utd-room"))
    frames = _render(performance, camera, config.video_size, room)
    _write_video(video, frames, config.video_size, config.fps)
    return [{"name": name, "frames": int(measured.shape[0]), "skeleton_bytes": skeleton.stat().st_size,
             "video_bytes": video.stat().st_size}]


def _sysu_take(config: SysuConfig, root: Path, subject: int, activity: int) -> list[dict]:
    ntu_action = SYSU.classes[SYSU.label_of_action(activity)].ntu_id
    camera = _kinect_rig(config.seed, "sysu-camera", {1: 0.0}, KINECT_V1_COLOR,
                         distance=(2.4, 2.9), height=(1.0, 1.4))[1]
    performance, measured = _single_take(config.seed, "sysu", subject, (activity,), ntu_action,
                                         config.frames, config.fps, camera)
    folder = root / "3DvideoNorm" / f"s{subject:02d}" / f"video{activity}"
    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    v1 = ntu25_to_kinect_v1(measured)
    image_xy = camera.intrinsics.scaled(*config.image_size).project(v1)
    scipy.io.savemat(folder / "sklWorld.mat", {"SW": v1.transpose(1, 2, 0)})
    scipy.io.savemat(folder / "sklImage.mat", {"S": image_xy.transpose(1, 2, 0)})
    room = Room.sample(_rng(config.seed, "sysu-room"))
    for i, array in enumerate(_render(performance, camera, config.image_size, room), start=1):
        Image.fromarray(array).save(folder / "rgb" / f"{i:05d}.jpg", quality=config.jpeg_quality)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return [{"name": f"s{subject:02d}_a{activity:02d}", "frames": int(measured.shape[0]), "bytes": size}]


def _run_tasks(fn: Callable[..., list[dict]], tasks: list[tuple], workers: int | None,
               progress: bool, desc: str) -> list[dict]:
    """Run fn(*task) for every task, in a process pool when workers > 1; results in task order."""
    workers = min(workers or os.cpu_count() or 1, len(tasks)) or 1
    bar = tqdm(total=len(tasks), desc=desc, unit="take", disable=not progress)
    results: list[list[dict]] = [[] for _ in tasks]
    try:
        if workers == 1:
            for i, task in enumerate(tasks):
                results[i] = fn(*task)
                bar.update()
        else:
            # spawn: safe whatever the parent has loaded (torch, threads)
            ctx = multiprocessing.get_context("spawn")
            with futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
                pending = {pool.submit(fn, *task): i for i, task in enumerate(tasks)}
                for done in futures.as_completed(pending):
                    results[pending[done]] = done.result()
                    bar.update()
    finally:
        bar.close()
    return [row for rows in results for row in rows]


def _summary(dataset: str, root: Path, rows: list[dict], started: float, **extra) -> dict:
    total = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return {"dataset": dataset, "root": str(root), "samples": len(rows),
            "names": [r["name"] for r in rows], "files": rows, "frames": sum(r["frames"] for r in rows),
            "bytes": total, "seconds": round(time.perf_counter() - started, 2),
            "codec": f"H.264 ({VIDEO_CODEC})", **extra}


def demo_sample_names(**kwargs) -> list[str]:
    """The sample names `generate_demo(**kwargs)` writes, without generating anything."""
    return DemoConfig(**_demo_kwargs(**kwargs)).names()


def _demo_kwargs(*, subjects=(1, 2, 3, 4, 5), cameras=(1, 2, 3), replications=(1, 2),
                 actions=None, frames=(40, 80), video_size=(320, 180), fps=30, seed=0,
                 faults: Imperfections | None = None) -> dict:
    kw = dict(subjects=tuple(subjects), cameras=tuple(cameras), replications=tuple(replications),
              frames=tuple(frames), video_size=tuple(video_size), fps=int(fps), seed=int(seed))
    if actions is not None:
        kw["actions"] = tuple(actions)
    if faults is not None:
        kw["faults"] = faults
    return kw


def generate_demo(root: str | Path, *, subjects: Sequence[int] = (1, 2, 3, 4, 5),
                  cameras: Sequence[int] = (1, 2, 3), replications: Sequence[int] = (1, 2),
                  actions: Sequence[int] | None = None, frames: tuple[int, int] = (40, 80),
                  video_size: tuple[int, int] = (320, 180), fps: int = 30, seed: int = 0,
                  faults: Imperfections | None = None, workers: int | None = None,
                  progress: bool = True) -> dict:
    """Write the demo dataset in the NTU RGB+D layout under `root`; returns a summary.

    actions default to every demo class (shared.registry.DEMO); frames is the inclusive range of
    clip lengths; workers default to the CPU count (1: no process pool)."""
    config = DemoConfig(**_demo_kwargs(subjects=subjects, cameras=cameras, replications=replications,
                                       actions=actions, frames=frames, video_size=video_size,
                                       fps=fps, seed=seed, faults=faults))
    root = Path(root)
    for sub in ("nturgb+d_skeletons", "nturgb+d_rgb"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = _run_tasks(_ntu_take, [(config, root, *take) for take in config.takes()],
                      workers, progress, "demo (NTU layout)")
    rows.sort(key=lambda r: r["name"])
    return _summary(
        "demo", root, rows, started,
        noise_body_files=[r["name"] for r in rows if r["noise_body"]],
        empty_frame_files=[r["name"] for r in rows if r["empty_frames"]],
        skeleton_bytes=sum(r["skeleton_bytes"] for r in rows),
        video_bytes=sum(r["video_bytes"] for r in rows))


def generate_utd(root: str | Path, *, subjects: Sequence[int] = (1, 2, 3, 4),
                 trials: Sequence[int] = (1, 2), actions: Sequence[int] | None = None,
                 frames: tuple[int, int] = (40, 80), video_size: tuple[int, int] = (640, 480),
                 fps: int = 30, seed: int = 0, workers: int | None = None,
                 progress: bool = True) -> dict:
    """Write UTD-MHAD-layout data for the six actions zero-shot maps to NTU (by default)."""
    kw = dict(subjects=tuple(subjects), trials=tuple(trials), frames=tuple(frames),
              video_size=tuple(video_size), fps=int(fps), seed=int(seed))
    config = UtdConfig(**kw, **({"actions": tuple(actions)} if actions is not None else {}))
    root = Path(root)
    for sub in ("Skeleton", "RGB"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tasks = [(config, root, a, s, t)
             for a in config.actions for s in config.subjects for t in config.trials]
    rows = _run_tasks(_utd_take, tasks, workers, progress, "demo (UTD-MHAD layout)")
    return _summary("utd-mhad", root, rows, started)


def generate_sysu(root: str | Path, *, subjects: Sequence[int] = (1, 2, 3, 4),
                  activities: Sequence[int] | None = None, frames: tuple[int, int] = (40, 80),
                  image_size: tuple[int, int] = (640, 480), fps: int = 30, seed: int = 0,
                  workers: int | None = None, progress: bool = True) -> dict:
    """Write SYSU-3D-HOI-layout data for the activities with a demo motion (by default)."""
    kw = dict(subjects=tuple(subjects), frames=tuple(frames), image_size=tuple(image_size),
              fps=int(fps), seed=int(seed))
    config = SysuConfig(**kw, **({"activities": tuple(activities)} if activities is not None else {}))
    root = Path(root)
    started = time.perf_counter()
    tasks = [(config, root, s, a) for s in config.subjects for a in config.activities]
    rows = _run_tasks(_sysu_take, tasks, workers, progress, "demo (SYSU layout)")
    return _summary("sysu", root, rows, started, codec="JPEG frames")
