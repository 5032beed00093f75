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
      root/3DvideoNorm/s{subject:02d}/video{activity}/rgb/{frame:05d}.jpg   frames 1..T, image_size
      (activity = the SYSU class number: 1 drinking, 3 calling phone, 7 sitting chair; the sample
      name in the registry is s{subject:02d}_a{activity:02d})

Conventions, as in the real data: camera coordinates in metres, x right, y up, z away from the
camera; a person facing the camera has their right side at +x (Kinect's mirrored view). Colour
coordinates are a pinhole projection: Kinect v2 colour (fx = fy = 1060, cx = 960, cy = 540 in
1920x1080; the demo video is that frame scaled to `video_size`), Kinect v1 (fx = fy = 531.15 in
640x480) for UTD-MHAD and SYSU. Stored colour coordinates always refer to the full colour frame
(the registry's `color_resolution`), whatever size the video or JPEGs are written at, so readers
scale them as they do the real data's. Frame i of a skeleton file is frame i of its video.

NTU scene: cameras 1, 2, 3 stand at -45, 0, +45 degrees around the performer at the same height;
setup (odd subjects: S001, even: S002) sets their distance and height and the room's colours. As
in NTU, replication 1 faces camera 1 and replication 2 faces camera 3; the two-person action faces
camera 2. Each camera measures the same performance with its own noise (larger on hands and in
side views). A few files carry Kinect's imperfections: a spurious body seen for at most 11 frames
(NTU's cleaning drops it), and one or two frames with no body at all (the cleaning drops them).

The body model and motions are in motions, cameras and rendering in render.
Everything is deterministic: every sample draws from its own random stream keyed by (seed, what,
subject, replication, action, camera), so files do not depend on the order or number of workers
(the .mat files' text header alone differs: MATLAB's format records when it was written).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.io
from scipy.ndimage import gaussian_filter1d
from tqdm import tqdm

from shared.errors import MMCLError
from shared.layouts import KINECT_V1_TO_NTU25_1BASED, NTU25, UTD_TO_KINECT_V1_1BASED
from shared.ntu_skeleton import write_ntu_skeleton
from shared.registry import DEMO, SYSU, UTD_MHAD, DatasetSpec

from .motions import (
    MOTIONS, Body, J, Motion, Performance, clip_length, heading, perform, performer, random_stream,
)
from .render import (
    KINECT_V1_COLOR, KINECT_V2_COLOR, VIDEO_CODEC, Camera, Intrinsics, Room, kinect_rig, render,
    write_jpegs, write_video,
)

__all__ = [
    "MOTIONS", "VIDEO_CODEC", "DemoConfig", "Imperfections", "Motion", "SysuConfig", "UtdConfig",
    "demo_sample_names", "generate_demo", "generate_sysu", "generate_utd", "perform",
]

NTU_CAMERA_AZIMUTHS = {1: -45.0, 2: 0.0, 3: 45.0}


# ============================================================================================
# What a Kinect records: tracker noise and file faults
# ============================================================================================

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


def _add_noise_body(joints: np.ndarray, ids: np.ndarray, present: np.ndarray,
                    rng: np.random.Generator, max_frames: int):
    """A spurious short-lived 'body': a wide, flat blob of jittering joints (furniture, a coat);
    returns (joints, ids, present) with it as the last body."""
    t = joints.shape[0]
    length = int(rng.integers(2, max_frames + 1))
    start = int(rng.integers(0, max(t - length, 0) + 1))
    centre = np.array([rng.choice([-1, 1]) * rng.uniform(0.8, 1.4), rng.uniform(-0.6, 0.1),
                       rng.uniform(2.8, 4.5)])
    blob = centre + rng.normal(0, 1, (t, NTU25.num_joints, 3)) * (0.35, 0.12, 0.08)
    present = np.concatenate([present, np.zeros((t, 1), bool)], 1)
    present[start:start + length, -1] = True
    ids = np.append(ids, ids.max() + int(rng.integers(5, 50)))
    return np.concatenate([joints, blob[:, None]], 1), ids, present


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


# ============================================================================================
# Takes: one performance, filmed
# ============================================================================================

def _perform_take(seed: int, dataset: str, subject: int, key: tuple[int, ...], motion: Motion,
                  frames: tuple[int, int], fps: float, azimuth: float = 0.0, depth: float = 0.15,
                  partner: Body | None = None) -> Performance:
    """The subject performs `motion` near the scene origin (within +-depth front to back),
    facing about `azimuth` degrees."""
    body = performer(seed, dataset, subject)
    rng = random_stream(seed, dataset, subject, *key)
    length = clip_length(motion, body, rng, frames)
    facing = heading(azimuth + rng.normal(0, 8.0))
    origin = (rng.uniform(-0.15, 0.15), 0.0, rng.uniform(-depth, depth))
    return perform(motion, body, rng, length, fps, facing, origin, partner)


@dataclass(frozen=True)
class _SingleTake:
    """One performer facing a single Kinect v1 (UTD-MHAD, SYSU)."""

    performance: Performance
    measured: np.ndarray  # (T, 25, 3) camera coordinates, with the tracker's noise
    camera: Camera
    room: Room

    def frames(self, size: tuple[int, int]) -> Iterator[np.ndarray]:
        return render(self.performance, self.camera, size, self.room)


def _single_take(seed: int, dataset: str, subject: int, key: tuple[int, ...], ntu_action: int,
                 frames: tuple[int, int], fps: float, distance: tuple[float, float],
                 height: tuple[float, float]) -> _SingleTake:
    camera = kinect_rig(seed, f"{dataset}-camera", {1: 0.0}, KINECT_V1_COLOR, distance, height)[1]
    performance = _perform_take(seed, dataset, subject, key, MOTIONS[ntu_action], frames, fps,
                                depth=0.2)
    # Kinect v1 is noisier than v2.
    measured = _measure(camera.to_camera(performance.joints),
                        random_stream(seed, dataset + "-measure", subject, *key), 1.4)
    room = Room.sample(random_stream(seed, dataset + "-room"))
    return _SingleTake(performance, measured[:, 0], camera, room)


def _ntu_take(config: DemoConfig, root: Path, subject: int, replication: int, action: int) -> list[dict]:
    """Perform one take and write every camera's skeleton file and video."""
    motion = MOTIONS[action]
    partner = (Body.sample(random_stream(config.seed, "ntu-partner", subject, replication))
               if motion.mutual else None)
    # As in NTU: replication 1 faces camera 1, replication 2 camera 3; pairs face camera 2.
    azimuth = 0.0 if motion.mutual else NTU_CAMERA_AZIMUTHS[1 if replication % 2 else 3]
    performance = _perform_take(config.seed, "ntu", subject, (replication, action), motion,
                                config.frames, config.fps, azimuth, partner=partner)

    setup = config.setup_of(subject)
    rig = kinect_rig(config.seed, f"ntu-setup-{setup}", NTU_CAMERA_AZIMUTHS, KINECT_V2_COLOR,
                     distance=(2.8, 3.4), height=(0.9, 1.4))
    room = Room.sample(random_stream(config.seed, "ntu-room", setup))
    out = []
    for c in config.cameras:
        camera, name = rig[c], config.name(subject, c, replication, action)
        rng_c = random_stream(config.seed, "ntu-measure", subject, replication, action, c)
        measured = _measure(camera.to_camera(performance.joints), rng_c,
                            1.0 + 0.6 * camera.view_angle(performance.forward))
        rec = _record(measured, camera.intrinsics.scaled(*DEMO.color_resolution), rng_c, config.faults)
        skeleton = root / "nturgb+d_skeletons" / f"{name}.skeleton"
        write_ntu_skeleton(skeleton, rec.joints, rec.color_xy, rec.body_ids, rec.present)
        video = root / "nturgb+d_rgb" / f"{name}_rgb.avi"
        write_video(video, render(performance, camera, config.video_size, room), config.video_size,
                    config.fps)
        out.append({"name": name, "frames": performance.joints.shape[0],
                    "bodies": performance.joints.shape[1], "noise_body": rec.noise_body,
                    "empty_frames": list(rec.empty_frames), "skeleton_bytes": skeleton.stat().st_size,
                    "video_bytes": video.stat().st_size})
    return out


def _utd_take(config: UtdConfig, root: Path, action: int, subject: int, trial: int) -> list[dict]:
    take = _single_take(config.seed, "utd", subject, (action, trial), _ntu_id(UTD_MHAD, action),
                        config.frames, config.fps, distance=(2.6, 3.0), height=(0.9, 1.2))
    name = f"a{action}_s{subject}_t{trial}"
    skeleton = root / "Skeleton" / f"{name}_skeleton.mat"
    d_skel = kinect_v1_to_utd(ntu25_to_kinect_v1(take.measured)).transpose(1, 2, 0)  # (20, 3, T)
    scipy.io.savemat(skeleton, {"d_skel": d_skel})
    video = root / "RGB" / f"{name}_color.avi"
    write_video(video, take.frames(config.video_size), config.video_size, config.fps)
    return [{"name": name, "frames": len(take.measured), "skeleton_bytes": skeleton.stat().st_size,
             "video_bytes": video.stat().st_size}]


def _sysu_take(config: SysuConfig, root: Path, subject: int, activity: int) -> list[dict]:
    take = _single_take(config.seed, "sysu", subject, (activity,), _ntu_id(SYSU, activity),
                        config.frames, config.fps, distance=(2.4, 2.9), height=(1.0, 1.4))
    folder = root / "3DvideoNorm" / f"s{subject:02d}" / f"video{activity}"
    (folder / "rgb").mkdir(parents=True, exist_ok=True)
    v1 = ntu25_to_kinect_v1(take.measured)
    # Pixels of the full colour frame the registry names (readers scale them to the images they
    # load), not of the possibly smaller JPEGs written here.
    image_xy = take.camera.intrinsics.scaled(*SYSU.color_resolution).project(v1)
    scipy.io.savemat(folder / "sklWorld.mat", {"SW": v1.transpose(1, 2, 0)})
    scipy.io.savemat(folder / "sklImage.mat", {"S": image_xy.transpose(1, 2, 0)})
    write_jpegs(folder / "rgb", take.frames(config.image_size), config.jpeg_quality)
    return [{"name": f"s{subject:02d}_a{activity:02d}", "frames": len(take.measured),
             "bytes": _tree_bytes(folder)}]


# ============================================================================================
# Configurations
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


def _with_motion(spec: DatasetSpec) -> tuple[int, ...]:
    """The dataset's actions whose NTU counterpart has a demo motion."""
    return tuple(c.action for c in spec.classes if c.ntu_id in MOTIONS)


def _ntu_id(spec: DatasetSpec, action: int) -> int:
    return spec.classes[spec.label_of_action(action)].ntu_id


@dataclass(frozen=True)
class UtdConfig:
    subjects: tuple[int, ...] = (1, 2, 3, 4)
    trials: tuple[int, ...] = (1, 2)
    actions: tuple[int, ...] = _with_motion(UTD_MHAD)
    frames: tuple[int, int] = (40, 80)
    video_size: tuple[int, int] = (640, 480)
    fps: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        _check_motions(UTD_MHAD, self.actions, "UTD-MHAD actions")


@dataclass(frozen=True)
class SysuConfig:
    subjects: tuple[int, ...] = (1, 2, 3, 4)
    activities: tuple[int, ...] = _with_motion(SYSU)
    frames: tuple[int, int] = (40, 80)
    image_size: tuple[int, int] = (640, 480)
    fps: int = 30
    seed: int = 0
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        _check_motions(SYSU, self.activities, "SYSU activities")


def _check_frames(frames: tuple[int, int]) -> None:
    lo, hi = frames
    if not 12 <= lo <= hi:
        raise MMCLError(f"frames must be a range (lo, hi) with 12 <= lo <= hi, got {frames}")


def _check_motions(spec: DatasetSpec, actions: tuple[int, ...], what: str) -> None:
    known = _with_motion(spec)
    if bad := [a for a in actions if a not in known]:
        raise MMCLError(f"no demo motion for {what} {bad}; known: {list(known)}")


def _given(**sequences: Sequence[int] | None) -> dict[str, tuple[int, ...]]:
    """The sequences passed (not None) as tuples: config defaults apply to the others."""
    return {k: tuple(v) for k, v in sequences.items() if v is not None}


# ============================================================================================
# Orchestration
# ============================================================================================

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


def _tree_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _summary(dataset: str, root: Path, rows: list[dict], started: float, **extra) -> dict:
    return {"dataset": dataset, "root": str(root), "samples": len(rows),
            "names": [r["name"] for r in rows], "files": rows, "frames": sum(r["frames"] for r in rows),
            "bytes": _tree_bytes(root), "seconds": round(time.perf_counter() - started, 2),
            "codec": f"H.264 ({VIDEO_CODEC})", **extra}


def demo_sample_names(**kwargs) -> list[str]:
    """The sample names `generate_demo(**kwargs)` writes, without generating anything."""
    return DemoConfig(**_demo_kwargs(**kwargs)).names()


def _demo_kwargs(*, subjects=(1, 2, 3, 4, 5), cameras=(1, 2, 3), replications=(1, 2),
                 actions=None, frames=(40, 80), video_size=(320, 180), fps=30, seed=0,
                 faults: Imperfections | None = None) -> dict:
    kw = dict(subjects=tuple(subjects), cameras=tuple(cameras), replications=tuple(replications),
              frames=tuple(frames), video_size=tuple(video_size), fps=int(fps), seed=int(seed),
              **_given(actions=actions))
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
    config = UtdConfig(subjects=tuple(subjects), trials=tuple(trials), frames=tuple(frames),
                       video_size=tuple(video_size), fps=int(fps), seed=int(seed),
                       **_given(actions=actions))
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
    """Write SYSU-3D-HOI-layout data for the activities with a demo motion (by default); the
    JPEGs are `image_size`, the colour coordinates in sklImage.mat 640x480 pixels regardless."""
    config = SysuConfig(subjects=tuple(subjects), frames=tuple(frames), image_size=tuple(image_size),
                        fps=int(fps), seed=int(seed), **_given(activities=activities))
    root = Path(root)
    started = time.perf_counter()
    tasks = [(config, root, s, a) for s in config.subjects for a in config.activities]
    rows = _run_tasks(_sysu_take, tasks, workers, progress, "demo (SYSU layout)")
    return _summary("sysu", root, rows, started, codec="JPEG frames")
