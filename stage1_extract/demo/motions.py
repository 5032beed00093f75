"""Parametric 3D motions of real NTU RGB+D actions, performed by generated people.

A `Body` (segment lengths, movement style, clothes) is posed by `Pose` (trunk first, then arms and
legs by two-bone inverse kinematics) into NTU-25 joints; each `Motion` in `MOTIONS` (keyed by NTU
action id) builds a `Scene` of actors and the props the skeleton lacks, and `perform` places that
scene in the world. Nothing here knows about cameras or file layouts (see render, dataset).

Person frame: origin on the floor between the feet, x right, y up, z forward, metres. Randomness
comes from `random_stream(seed, *key)`, one independent stream per key, so a sample never depends
on which others are generated, or in which order.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from shared.layouts import NTU25

__all__ = [
    "J", "MOTIONS", "Body", "Look", "Motion", "MotionContext", "Performance", "Pose", "Prop", "Scene",
    "clip_length", "heading", "perform", "performer", "random_stream", "unit",
]

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

def random_stream(seed: int, *key: int | str) -> np.random.Generator:
    """An independent stream per (seed, key), so results never depend on task order."""
    words = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng(words)


def unit(v: np.ndarray) -> np.ndarray:
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
    f = unit(np.array([forward[0], 0.0, forward[2]], float))
    up = np.array([0.0, 1.0, 0.0])
    return np.stack([np.cross(up, f), up, f])


def _to_parent(points: np.ndarray, origin, forward) -> np.ndarray:
    """Points in a frame at `origin` facing `forward` -> the parent frame."""
    return np.asarray(origin, float) + points @ _axes(forward)


def _to_local(points: np.ndarray, origin, forward) -> np.ndarray:
    return (points - np.asarray(origin, float)) @ _axes(forward).T


def heading(azimuth_deg: float) -> np.ndarray:
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
    bend = unit(pole - np.sum(pole * u, -1, keepdims=True) * u)
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
        direction = unit(unit(wrist - elbow) + _apply(self.rot, np.asarray(hand_bias, float) * mirror))
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


def clip_length(motion: Motion, body: Body, rng: np.random.Generator, frames: tuple[int, int]) -> int:
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
