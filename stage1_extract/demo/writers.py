"""The demo's takes: one generated performance, filmed and written in one dataset's layout.

`ntu_take` writes every camera's NTU skeleton file and video, `utd_take` one UTD-MHAD .mat file and
video, `sysu_take` one SYSU folder (sklWorld.mat, sklImage.mat, JPEG frames). Each returns its rows
of the generation summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io

from shared.ntu_skeleton import write_ntu_skeleton
from shared.registry import DEMO, SYSU, UTD_MHAD

from .body import Body, Performance, performer
from .configs import NTU_CAMERA_AZIMUTHS, DemoConfig, SysuConfig, UtdConfig, ntu_id
from .kinect import kinect_v1_to_utd, measure, ntu25_to_kinect_v1, record
from .kinematics import heading, random_stream
from .motions import MOTIONS, Motion, clip_length, perform
from .render import KINECT_V1_COLOR, KINECT_V2_COLOR, Camera, Room, kinect_rig, render, write_jpegs, write_video


def _perform_take(
    seed: int,
    dataset: str,
    subject: int,
    key: tuple[int, ...],
    motion: Motion,
    frames: tuple[int, int],
    fps: float,
    azimuth: float = 0.0,
    depth: float = 0.15,
    partner: Body | None = None,
) -> Performance:
    """The subject performs `motion` near the scene origin (within +-depth front to back),
    facing about `azimuth` degrees, standing idle for a random share of the clip before and after
    the action (`padding_shares`)."""
    body = performer(seed, dataset, subject)
    rng = random_stream(seed, dataset, subject, *key)
    length = clip_length(motion, body, rng, frames)
    facing = heading(azimuth + rng.normal(0, 8.0))
    origin = (rng.uniform(-0.15, 0.15), 0.0, rng.uniform(-depth, depth))
    # Streams of their own, so that the draws above stay those of the generator without them.
    padding = padding_shares(random_stream(seed, dataset + "-padding", subject, *key))
    return perform(motion, body, rng, length, fps, facing, origin, partner, padding)


def padding_shares(rng) -> tuple[float, float]:
    """Idle lead-in and lead-out, as shares of the clip: 0-25 % and 0-20 %."""
    return float(rng.uniform(0.0, 0.25)), float(rng.uniform(0.0, 0.20))


@dataclass(frozen=True)
class _SingleTake:
    """One performer facing a single Kinect v1 (UTD-MHAD, SYSU)."""

    performance: Performance
    measured: np.ndarray  # (T, 25, 3) camera coordinates, with the tracker's noise
    camera: Camera
    room: Room

    def frames(self, size: tuple[int, int]) -> Iterator[np.ndarray]:
        return render(self.performance, self.camera, size, self.room)


def _single_take(
    seed: int,
    dataset: str,
    subject: int,
    key: tuple[int, ...],
    ntu_action: int,
    frames: tuple[int, int],
    fps: float,
    distance: tuple[float, float],
    height: tuple[float, float],
) -> _SingleTake:
    camera = kinect_rig(
        seed,
        f"{dataset}-camera",
        {1: 0.0},
        KINECT_V1_COLOR,
        distance,
        height,
        jitter=random_stream(seed, dataset + "-camera-take", subject, *key),
    )[1]
    performance = _perform_take(seed, dataset, subject, key, MOTIONS[ntu_action], frames, fps, depth=0.2)
    # Kinect v1 is noisier than v2.
    measured = measure(
        camera.to_camera(performance.joints), random_stream(seed, dataset + "-measure", subject, *key), 1.4
    )
    room = Room.sample(random_stream(seed, dataset + "-room"))
    return _SingleTake(performance, measured[:, 0], camera, room)


def ntu_take(config: DemoConfig, root: Path, subject: int, replication: int, action: int) -> list[dict]:
    """Perform one take and write every camera's skeleton file and video."""
    motion = MOTIONS[action]
    partner = Body.sample(random_stream(config.seed, "ntu-partner", subject, replication)) if motion.mutual else None
    # As in NTU: replication 1 faces camera 1, replication 2 camera 3; pairs face camera 2.
    azimuth = 0.0 if motion.mutual else NTU_CAMERA_AZIMUTHS[1 if replication % 2 else 3]
    performance = _perform_take(
        config.seed, "ntu", subject, (replication, action), motion, config.frames, config.fps, azimuth, partner=partner
    )

    setup = config.setup_of(subject)
    # The setup's rig, each camera a little off its place in every take (angle, height, distance).
    rig = kinect_rig(
        config.seed,
        f"ntu-setup-{setup}",
        NTU_CAMERA_AZIMUTHS,
        KINECT_V2_COLOR,
        distance=(2.8, 3.4),
        height=(0.9, 1.4),
        jitter=random_stream(config.seed, "ntu-camera-take", subject, replication, action),
    )
    room = Room.sample(random_stream(config.seed, "ntu-room", setup))
    out = []
    for c in config.cameras:
        camera, name = rig[c], config.name(subject, c, replication, action)
        rng_c = random_stream(config.seed, "ntu-measure", subject, replication, action, c)
        measured = measure(
            camera.to_camera(performance.joints), rng_c, 1.0 + 0.6 * camera.view_angle(performance.forward)
        )
        rec = record(measured, camera.intrinsics.scaled(*DEMO.color_resolution), rng_c, config.faults)
        skeleton = root / "nturgb+d_skeletons" / f"{name}.skeleton"
        write_ntu_skeleton(skeleton, rec.joints, rec.color_xy, rec.body_ids, rec.present)
        video = root / "nturgb+d_rgb" / f"{name}_rgb.avi"
        write_video(video, render(performance, camera, config.video_size, room), config.video_size, config.fps)
        out.append(
            {
                "name": name,
                "frames": performance.joints.shape[0],
                "bodies": performance.joints.shape[1],
                "noise_body": rec.noise_body,
                "empty_frames": list(rec.empty_frames),
                "skeleton_bytes": skeleton.stat().st_size,
                "video_bytes": video.stat().st_size,
            }
        )
    return out


def utd_take(config: UtdConfig, root: Path, action: int, subject: int, trial: int) -> list[dict]:
    take = _single_take(
        config.seed,
        "utd",
        subject,
        (action, trial),
        ntu_id(UTD_MHAD, action),
        config.frames,
        config.fps,
        distance=(2.6, 3.0),
        height=(0.9, 1.2),
    )
    name = f"a{action}_s{subject}_t{trial}"
    skeleton = root / "Skeleton" / f"{name}_skeleton.mat"
    d_skel = kinect_v1_to_utd(ntu25_to_kinect_v1(take.measured)).transpose(1, 2, 0)  # (20, 3, T)
    scipy.io.savemat(skeleton, {"d_skel": d_skel})
    video = root / "RGB" / f"{name}_color.avi"
    write_video(video, take.frames(config.video_size), config.video_size, config.fps)
    return [
        {
            "name": name,
            "frames": len(take.measured),
            "skeleton_bytes": skeleton.stat().st_size,
            "video_bytes": video.stat().st_size,
        }
    ]


def sysu_take(config: SysuConfig, root: Path, subject: int, activity: int) -> list[dict]:
    take = _single_take(
        config.seed,
        "sysu",
        subject,
        (activity,),
        ntu_id(SYSU, activity),
        config.frames,
        config.fps,
        distance=(2.4, 2.9),
        height=(1.0, 1.4),
    )
    folder = root / "3DvideoNorm" / f"s{subject:02d}" / f"video{activity}"
    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    v1 = ntu25_to_kinect_v1(take.measured)
    # Pixels of the full colour frame the registry names (readers scale them to the images they
    # load), not of the possibly smaller JPEGs written here.
    image_xy = take.camera.intrinsics.scaled(*SYSU.color_resolution).project(v1)
    scipy.io.savemat(folder / "sklWorld.mat", {"SW": v1.transpose(1, 2, 0)})
    scipy.io.savemat(folder / "sklImage.mat", {"S": image_xy.transpose(1, 2, 0)})
    write_jpegs(folder / "rgb", take.frames(config.image_size), config.jpeg_quality)
    return [{"name": f"s{subject:02d}_a{activity:02d}", "frames": len(take.measured), "bytes": tree_bytes(folder)}]


def tree_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
