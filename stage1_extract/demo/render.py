"""Virtual Kinects filming a performance: camera placement and projection, a stick-figure
renderer for people and props in a simple room, and the video / JPEG writers.

Camera space is Kinect's: metres, x to the sensor's left, y up, z away from the camera, so a
person facing the camera has their right side at +x and the colour image is mirrored. Colour
pixels are a pinhole projection with the sensor's colour intrinsics (`KINECT_V2_COLOR` in
1920x1080, `KINECT_V1_COLOR` in 640x480); a smaller image is that frame scaled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from .body import J, Look, Performance, Prop
from .kinematics import heading, random_stream, unit

__all__ = [
    "KINECT_V1_COLOR",
    "KINECT_V2_COLOR",
    "VIDEO_CODEC",
    "Camera",
    "Intrinsics",
    "Painter",
    "Room",
    "kinect_rig",
    "render",
    "write_jpegs",
    "write_video",
]

VIDEO_CODEC = "libx264"  # H.264 in AVI, as NTU's videos


# ============================================================================================
# Cameras
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
        return np.stack([self.cx + self.fx * points[..., 0] / z, self.cy - self.fy * points[..., 1] / z], -1)


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
        forward = unit(np.asarray(target, float) - position)
        left = unit(np.cross(forward, [0.0, 1.0, 0.0]))
        return cls(position, np.stack([left, np.cross(left, forward), forward]), intrinsics)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return (points - self.position) @ self.rotation.T

    def view_angle(self, facing: np.ndarray) -> float:
        """|sin| of the angle between where the scene faces and the camera: 0 front, 1 side."""
        towards = unit(self.position * np.array([1.0, 0.0, 1.0]))
        return float(np.linalg.norm(np.cross(unit(facing), towards)))


# Per-take camera jitter (standard deviations): azimuth (degrees), distance, height, aim point (m).
CAMERA_JITTER = {"azimuth": 4.0, "distance": 0.12, "height": 0.06, "aim": 0.05}


def kinect_rig(
    seed: int,
    key: str,
    azimuths: dict[int, float],
    intrinsics: Intrinsics,
    distance: tuple[float, float],
    height: tuple[float, float],
    jitter: np.random.Generator | None = None,
) -> dict[int, Camera]:
    """Cameras at the same height and distance around the scene origin, aimed at the performer;
    with a `jitter` stream each camera is moved off that place by CAMERA_JITTER (per take: the
    view angle, height and distance vary from sample to sample as between real recordings)."""
    rng = random_stream(seed, key)
    d, h, aim = rng.uniform(*distance), rng.uniform(*height), rng.uniform(0.85, 1.0)
    cameras = {}
    for c, az in azimuths.items():
        dz, dd, dh, da = (
            (jitter.normal(0, CAMERA_JITTER[k]) for k in ("azimuth", "distance", "height", "aim"))
            if jitter is not None
            else (0.0,) * 4
        )
        cameras[c] = Camera.look_at(heading(az + dz) * (d + dd) + (0.0, h + dh, 0.0), (0.0, aim + da, 0.0), intrinsics)
    return cameras


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

        return cls(
            walls=tone(150, 215),
            back_wall=tone(165, 235),
            floor=tone(80, 150),
            door=tone(90, 160),
            poster=tone(30, 230),
        )

    def faces(self) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
        """World polygons, drawn in order: walls, floor, door, poster (camera 2 looks along +z)."""
        x, back, near, top = 3.6, 2.7, -6.0, 3.0

        def quad(*corners):
            return np.array(corners, float)

        def on_back_wall(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
            z = back - 0.01  # just in front, so the wall never hides it
            return quad([x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z])

        return [
            (quad([-x, 0, near], [-x, 0, back], [-x, top, back], [-x, top, near]), self.walls),
            (quad([x, 0, near], [x, 0, back], [x, top, back], [x, top, near]), self.walls),
            (quad([-x, 0, back], [x, 0, back], [x, top, back], [-x, top, back]), self.back_wall),
            (quad([-x, 0, near], [x, 0, near], [x, 0, back], [-x, 0, back]), self.floor),
            (on_back_wall(0.9, 1.8, 0, 2.05), self.door),
            (on_back_wall(-1.7, -0.9, 1.1, 1.75), self.poster),
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
        ("Hip", "Knee", "trousers", 0.14),
        ("Knee", "Ankle", "trousers", 0.11),
        ("Ankle", "Foot", "shoes", 0.08),
        ("Shoulder", "Elbow", "shirt", 0.10),
        ("Elbow", "Wrist", "skin", 0.075),
        ("Wrist", "HandTip", "skin", 0.065),
    )
) + (("SpineShoulder", "Neck", "skin", 0.09),)
_TORSO = [J[n] for n in ("ShoulderLeft", "ShoulderRight", "HipRight", "HipLeft")]
_PROP_SIZE = {"cup": (0.09, 0.12), "phone": (0.075, 0.15), "ball": (0.24, 0.24)}  # width, height
_HELD = ("cup", "phone")


def _disc(centre: np.ndarray, r: float) -> list[float]:
    """The bounding box PIL draws a circle of radius r around centre (pixels) in."""
    return [centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r]


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

    def frame(self, joints_cam: np.ndarray, looks: Sequence[Look], props_cam: Sequence[tuple[Prop, int]]) -> np.ndarray:
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
        colours = {"shirt": look.shirt, "trousers": look.trousers, "skin": look.skin, "shoes": look.shoes}
        items = []

        def limb(a: int, b: int, colour, width: float) -> Callable[[], None]:
            def paint() -> None:
                draw.line([tuple(uv[a]), tuple(uv[b])], fill=colour, width=int(round(width)))
                for j in (a, b):
                    draw.ellipse(_disc(uv[j], width / 2), fill=colour)

            return paint

        for a, b, part, metres in _LIMBS:
            ia, ib = J[a], J[b]
            depth = 0.5 * (z[ia] + z[ib])
            items.append((depth, limb(ia, ib, colours[part], self._px(metres, depth))))
        torso = [tuple(uv[j]) for j in _TORSO]
        items.append((float(z[_TORSO].mean()) + 0.03, lambda: draw.polygon(torso, fill=look.shirt, outline=look.shirt)))
        head, r = uv[J["Head"]], self._px(0.105, z[J["Head"]])

        def paint_head() -> None:
            draw.ellipse(_disc(head, r), fill=look.skin)
            draw.chord(_disc(head, r), 180, 360, fill=look.hair)

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


def render(performance: Performance, camera: Camera, size: tuple[int, int], room: Room) -> Iterator[np.ndarray]:
    """The video frames of one performance as seen by one camera (noise-free: the real scene)."""
    painter = Painter(camera, size, room)
    joints = camera.to_camera(performance.joints)
    props = [p.moved(camera.to_camera) for p in performance.props]
    for t in range(joints.shape[0]):
        yield painter.frame(joints[t], performance.looks, [(p, t) for p in props])


def write_video(path: Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int) -> int:
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


def write_jpegs(folder: Path, frames: Iterable[np.ndarray], quality: int) -> int:
    """Frames as folder/00001.jpg, 00002.jpg, ... (numbered from 1, as SYSU's); returns the count."""
    n = 0
    for n, array in enumerate(frames, start=1):
        Image.fromarray(array).save(folder / f"{n:05d}.jpg", quality=quality)
    return n
