"""Parametric 3D motions of real NTU RGB+D actions: what the demo's people perform.

Each `Motion` in `MOTIONS` (keyed by NTU action id) builds, from a `MotionContext` (performers, a
random stream, the clip's clock), a `Scene` of actors posed by `Pose` and the props the skeleton
lacks; `perform` places that scene in the world. The people are in body, the geometry in
kinematics; nothing here knows about cameras or file layouts (see render, dataset).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .body import LEFT, RIGHT, SIDES, Actor, Body, Performance, Pose, Prop, Scene, side_name
from .kinematics import apply, mix, smoothstep, to_local, to_parent

__all__ = ["MOTIONS", "Motion", "MotionContext", "clip_length", "perform"]

GRAVITY = np.array([0.0, -9.81, 0.0])


@dataclass
class MotionContext:
    """What a motion is built from: performers, a random stream and the clip's clock.

    `lead` and `tail` are the shares of the clip the performer stands idle before the action
    starts and after it ends (real recordings start and stop at no fixed point of the action)."""

    body: Body
    rng: np.random.Generator
    frames: int
    fps: float
    partner: Body | None = None
    lead: float = 0.0
    tail: float = 0.0

    @property
    def s(self) -> np.ndarray:
        """The action's normalised time: 0..1 between the idle lead-in and lead-out (below 0
        before, above 1 after, where every motion holds its rest pose)."""
        clip = np.linspace(0.0, 1.0, self.frames)
        return (clip - self.lead) / max(1.0 - self.lead - self.tail, 1e-3)

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.frames) / self.fps

    def events(self, *base: float, sd: float = 0.03) -> list[float]:
        """Jittered, ordered event times around `base` (normalised time)."""
        shift = self.rng.normal(0, sd)
        times = np.sort(np.asarray(base) + shift + self.rng.normal(0, sd / 2, len(base)))
        return list(np.clip(times, 0.02, 0.98) + np.arange(len(base)) * 1e-3)

    def ease(self, a: float, b: float) -> np.ndarray:
        return smoothstep((self.s - a) / max(b - a, 1e-3))

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
        sway = np.stack(
            [
                0.010 * np.sin(2 * np.pi * f[0] * self.t + phase[0]),
                0.003 * np.sin(4 * np.pi * f[0] * self.t + phase[1]),
                0.008 * np.sin(2 * np.pi * f[1] * self.t + phase[1]),
            ],
            -1,
        )
        return np.array([0.0, body.stand_height, 0.0]) + sway

    def pose(self, body: Body | None = None) -> Pose:
        return Pose(body or self.body, self.frames)


def _hand_to_head(ctx: MotionContext, target, hold: tuple[float, ...], pole, head_pitch, head_roll, sd: float = 0.03):
    """Shared shape of drinking and phoning: the right hand goes to a point by the head."""
    a, up, down, end = ctx.events(*hold)
    w = ctx.pulse(a, up, down, end)
    pose = ctx.pose()
    pose.trunk(ctx.standing_pelvis(), pitch=0.03 * w, head_pitch=head_pitch * w, head_roll=head_roll * w)
    goal = pose.point("Head", ctx.vary(target, sd=sd), frame="head")
    pose.arm(RIGHT, mix(pose.rest_wrist(RIGHT), goal, w), pole=pole, hand_bias=np.outer(w, (-0.2, 1.3, 0.1)))
    pose.arm(LEFT, pose.rest_wrist(LEFT)).legs()
    return pose


# Drinking and phoning differ in the skeleton only by a few centimetres of where the hand goes, and
# people vary more than that (elbow raised or low, head still or tilted), so the skeleton alone
# confuses them; the video shows the cup or the phone.
def _drink_water(ctx: MotionContext) -> Scene:
    # Cup to the mouth, the elbow out more or less, the head tilting back a little while drinking.
    r = ctx.rng
    pose = _hand_to_head(
        ctx,
        (0.04, -0.14, 0.08),
        (0.14, 0.34, 0.62, 0.84),
        pole=(r.uniform(0.4, 0.9), -1.0, r.uniform(0.0, 0.25)),
        head_pitch=-r.uniform(0.0, 0.2),
        head_roll=r.uniform(-0.03, 0.08),
    )
    cup = pose.point("HandRight", (0.0, 0.02, 0.04))
    return Scene([Actor(pose.joints)], [Prop("cup", cup)])


def _phone_call(ctx: MotionContext) -> Scene:
    # Phone to the ear: the hand ends a few centimetres from where drinking puts it.
    r = ctx.rng
    pose = _hand_to_head(
        ctx,
        (0.07, -0.11, 0.03),
        (0.12, 0.32, 0.66, 0.86),
        pole=(r.uniform(0.55, 1.0), -0.95, r.uniform(-0.05, 0.2)),
        head_pitch=r.uniform(-0.08, 0.06),
        head_roll=r.uniform(0.0, 0.15),
    )
    phone = pose.point("HandRight", (-0.01, 0.03, 0.0))
    return Scene([Actor(pose.joints)], [Prop("phone", phone)])


def _chair(seat_height: float, seat_z: float) -> Prop:
    """A chair behind the performer (person frame): seat, back rest and four legs."""
    w, d, back = 0.23, 0.21, 0.45
    x, z = np.array([-w, w, w, -w]), np.array([d, d, -d, -d]) + seat_z
    seat = np.stack([x, np.full(4, seat_height), z], -1)
    top, rear = seat_height + back, seat_z - d
    rest = np.array([[-w, seat_height, rear], [w, seat_height, rear], [w, top, rear - 0.04], [-w, top, rear - 0.04]])
    legs = tuple(
        np.array([[cx, 0.0, cz], [cx + 0.03, 0.0, cz], [cx + 0.03, seat_height, cz], [cx, seat_height, cz]])
        for cx, cz in zip(x * 0.9, z, strict=True)
    )
    centre = np.broadcast_to([0.0, seat_height, seat_z], (1, 3))
    return Prop("chair", centre, (*legs, seat, rest))


def _sit_transition(ctx: MotionContext, sitting_down: bool) -> Scene:
    """Stand -> sit (or the reverse): hips back then down, trunk leaning forward on the way."""
    b = ctx.body
    a, z = ctx.events(0.22, 0.72, sd=0.04)
    p = ctx.ease(a, z)
    p = p if sitting_down else 1 - p
    back, drop = smoothstep(p / 0.7), smoothstep((p - 0.2) / 0.8)
    seat_y = b.ankle + b.shin + 0.06 + b.hip_drop
    seat_z = -0.92 * b.thigh
    stand = ctx.standing_pelvis()
    pelvis = np.stack(
        [
            stand[:, 0] * (1 - p),
            mix(stand[:, 1], np.full(ctx.frames, seat_y), drop),
            mix(stand[:, 2], np.full(ctx.frames, seat_z), back),
        ],
        -1,
    )
    lean = ctx.rng.uniform(0.45, 0.7) * b.amplitude
    pose = ctx.pose()
    pose.trunk(pelvis, pitch=lean * np.sin(np.pi * p) ** 1.5 + 0.04 * p, head_pitch=0.1 * p)
    on_thighs = smoothstep((p - 0.3) / 0.6)
    for s in SIDES:
        thigh = pose.point("SpineShoulder", ctx.vary((s * 0.14, -0.40, 0.30)))
        pose.arm(s, mix(pose.rest_wrist(s), thigh, on_thighs))
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
    pelvis[:, 1] = mix(pelvis[:, 1], np.full(ctx.frames, low), np.minimum(depth * w, 1.0))
    pelvis[:, 2] -= 0.22 * depth * w
    pose = ctx.pose().trunk(pelvis, pitch=0.55 * depth * w)
    arms = ctx.ease(a, a + 0.6 * (down - a)) * (1 - ctx.ease(up + 0.3 * (end - up), end))
    for s in SIDES:
        ahead = pose.point(side_name("Shoulder", s), ctx.vary((0.0, -0.03, 0.92 * b.arm_length)), frame="person")
        pose.arm(s, mix(pose.rest_wrist(s), ahead, arms), pole=(0.2, -1.0, -0.2))
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
    side_to_side = apply(pose.rot, np.stack([0.11 * swing, 0.02 * np.cos(2 * phase), 0 * swing], -1))
    pose.arm(
        RIGHT,
        mix(pose.rest_wrist(RIGHT), centre + side_to_side, w),
        pole=(1.0, -0.7, -0.3),
        hand_bias=np.outer(w, (0.0, 1.5, 0.0)) + np.outer(0.4 * swing * w, (1.0, 0.0, 0.0)),
    )
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
        pose.arm(s, mix(pose.rest_wrist(s), goal, w), pole=(1.0, -0.4, 0.1), hand_bias=np.outer(w, (-1.2, 0.2, 0.0)))
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
    chest, above, release = (
        ctx.vary(v, sd=0.015) for v in ((0.03, -0.16, 0.32), (0.10, 0.30, 0.20), (0.12, 0.55, 0.34))
    )
    path = mix(
        mix(np.broadcast_to(chest, (ctx.frames, 3)), np.broadcast_to(above, (ctx.frames, 3)), ctx.ease(dip, mid)),
        np.broadcast_to(release, (ctx.frames, 3)),
        ctx.ease(mid, rel),
    )
    ball = pose.point("SpineShoulder", path)
    lower = ctx.ease(d0, d1)
    right = pose.point("SpineShoulder", path + (0.02, -0.07, -0.08))
    left = pose.point("SpineShoulder", path + (-0.13, -0.03, -0.03))
    flick = ctx.ease(rel, rel + 0.06)
    pose.arm(
        RIGHT,
        mix(mix(pose.rest_wrist(RIGHT), right, hold), pose.rest_wrist(RIGHT), lower),
        pole=(0.4, -1.0, 0.3),
        hand_bias=np.outer(hold * (1 - flick), (0, 1.0, -0.5)) + np.outer(flick * (1 - lower), (0, -0.6, 1.5)),
    )
    left_w = hold * (1 - ctx.ease(rel - 0.04, rel + 0.12))
    pose.arm(
        LEFT,
        mix(pose.rest_wrist(LEFT), left, left_w),
        pole=(0.8, -1.0, 0.0),
        hand_bias=np.outer(left_w, (-1.0, 0.5, 0.0)),
    )
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
        hand = to_local(grip, origin, forward) - (0.0, 0.0, 0.03)
        pose.arm(
            RIGHT, mix(pose.rest_wrist(RIGHT), hand, w), pole=(0.3, -1.0, -0.2), hand_bias=np.outer(w, (-0.3, 0.0, 0.3))
        )
        pose.arm(LEFT, pose.rest_wrist(LEFT)).legs()
        actors.append(Actor(pose.joints, origin, forward))
    return Scene(actors)


@dataclass(frozen=True)
class Motion:
    ntu_action: int
    build: Callable[[MotionContext], Scene]
    duration: float  # typical clip length, as a fraction of the frame range, before speed
    mutual: bool = False


MOTIONS: dict[int, Motion] = {
    m.ntu_action: m
    for m in (
        Motion(1, _drink_water, 0.55),
        Motion(8, _sitting_down, 0.55),
        Motion(9, _standing_up, 0.50),
        Motion(23, _hand_waving, 0.45),
        Motion(28, _phone_call, 0.65),
        Motion(58, _handshaking, 0.50, mutual=True),
        Motion(63, _shoot_basket, 0.50),
        Motion(80, _squat_down, 0.55),
        Motion(96, _cross_arms, 0.50),
    )
}


def clip_length(motion: Motion, body: Body, rng: np.random.Generator, frames: tuple[int, int]) -> int:
    lo, hi = frames
    q = np.clip(motion.duration / body.speed + rng.normal(0, 0.15), 0, 1)
    return int(lo + round(q * (hi - lo)))


def perform(
    motion: Motion,
    body: Body,
    rng: np.random.Generator,
    frames: int,
    fps: float,
    facing: np.ndarray,
    origin=(0.0, 0.0, 0.0),
    partner: Body | None = None,
    padding: tuple[float, float] = (0.0, 0.0),
) -> Performance:
    """Build a motion and place it in the world: the scene at `origin`, facing `facing`;
    `padding`: the idle (lead, tail) shares of the clip (see MotionContext)."""
    lead, tail = padding
    if not (0 <= lead and 0 <= tail and lead + tail < 0.9):
        raise ValueError(f"padding {padding}: shares >= 0 that leave the action 10 % of the clip")
    scene = motion.build(MotionContext(body, rng, frames, fps, partner, lead, tail))
    joints = np.stack([to_parent(to_parent(a.joints, a.origin, a.forward), origin, facing) for a in scene.actors], 1)
    props = [p.moved(lambda x: to_parent(x, origin, facing)) for p in scene.props]
    looks = [body.look] + ([partner.look] if len(scene.actors) > 1 and partner else [])
    return Performance(joints, np.asarray(facing, float), props, looks)
