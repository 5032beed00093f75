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

The geometry is in kinematics, the people in body, the motions in motions, cameras and rendering in
render, what a Kinect records in kinect, the settings in configs, the per-layout writers in writers;
this module runs them.
Everything is deterministic: every sample draws from its own random stream keyed by (seed, what,
subject, replication, action, camera), so files do not depend on the order or number of workers
(the .mat files' text header alone differs: MATLAB's format records when it was written).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from shared.progress import progress_bar

from .configs import DemoConfig, SysuConfig, UtdConfig
from .kinect import Imperfections
from .motions import MOTIONS, Motion, perform
from .render import VIDEO_CODEC
from .writers import ntu_take, sysu_take, tree_bytes, utd_take

__all__ = [
    "MOTIONS",
    "VIDEO_CODEC",
    "DemoConfig",
    "Imperfections",
    "Motion",
    "SysuConfig",
    "UtdConfig",
    "demo_sample_names",
    "generate_demo",
    "generate_sysu",
    "generate_utd",
    "perform",
]


def _given(**sequences: Sequence[int] | None) -> dict[str, tuple[int, ...]]:
    """The sequences passed (not None) as tuples: config defaults apply to the others."""
    return {k: tuple(v) for k, v in sequences.items() if v is not None}


def _run_tasks(
    fn: Callable[..., list[dict]], tasks: list[tuple], workers: int | None, progress: bool, desc: str
) -> list[dict]:
    """Run fn(*task) for every task, in a process pool when workers > 1; results in task order."""
    workers = min(workers or os.cpu_count() or 1, len(tasks)) or 1
    bar = progress_bar(total=len(tasks), desc=desc, unit="take", disable=not progress)
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
    return {
        "dataset": dataset,
        "root": str(root),
        "samples": len(rows),
        "names": [r["name"] for r in rows],
        "files": rows,
        "frames": sum(r["frames"] for r in rows),
        "bytes": tree_bytes(root),
        "seconds": round(time.perf_counter() - started, 2),
        "codec": f"H.264 ({VIDEO_CODEC})",
        **extra,
    }


def demo_sample_names(**kwargs) -> list[str]:
    """The sample names `generate_demo(**kwargs)` writes, without generating anything."""
    return DemoConfig(**_demo_kwargs(**kwargs)).names()


def _demo_kwargs(
    *,
    subjects=(1, 2, 3, 4, 5),
    cameras=(1, 2, 3),
    replications=(1, 2),
    actions=None,
    frames=(40, 80),
    video_size=(320, 180),
    fps=30,
    seed=0,
    faults: Imperfections | None = None,
) -> dict:
    kw = dict(
        subjects=tuple(subjects),
        cameras=tuple(cameras),
        replications=tuple(replications),
        frames=tuple(frames),
        video_size=tuple(video_size),
        fps=int(fps),
        seed=int(seed),
        **_given(actions=actions),
    )
    if faults is not None:
        kw["faults"] = faults
    return kw


def generate_demo(
    root: str | Path,
    *,
    subjects: Sequence[int] = (1, 2, 3, 4, 5),
    cameras: Sequence[int] = (1, 2, 3),
    replications: Sequence[int] = (1, 2),
    actions: Sequence[int] | None = None,
    frames: tuple[int, int] = (40, 80),
    video_size: tuple[int, int] = (320, 180),
    fps: int = 30,
    seed: int = 0,
    faults: Imperfections | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write the demo dataset in the NTU RGB+D layout under `root`; returns a summary.

    actions default to every demo class (shared.registry.DEMO); frames is the inclusive range of
    clip lengths; workers default to the CPU count (1: no process pool)."""
    config = DemoConfig(
        **_demo_kwargs(
            subjects=subjects,
            cameras=cameras,
            replications=replications,
            actions=actions,
            frames=frames,
            video_size=video_size,
            fps=fps,
            seed=seed,
            faults=faults,
        )
    )
    root = Path(root)
    for sub in ("nturgb+d_skeletons", "nturgb+d_rgb"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = _run_tasks(
        ntu_take, [(config, root, *take) for take in config.takes()], workers, progress, "demo (NTU layout)"
    )
    rows.sort(key=lambda r: r["name"])
    return _summary(
        "demo",
        root,
        rows,
        started,
        noise_body_files=[r["name"] for r in rows if r["noise_body"]],
        empty_frame_files=[r["name"] for r in rows if r["empty_frames"]],
        skeleton_bytes=sum(r["skeleton_bytes"] for r in rows),
        video_bytes=sum(r["video_bytes"] for r in rows),
    )


def generate_utd(
    root: str | Path,
    *,
    subjects: Sequence[int] = UtdConfig.subjects,
    trials: Sequence[int] = UtdConfig.trials,
    actions: Sequence[int] | None = None,
    frames: tuple[int, int] = (40, 80),
    video_size: tuple[int, int] = (640, 480),
    fps: int = 30,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
    label: str = "demo (UTD-MHAD layout)",
) -> dict:
    """Write UTD-MHAD-layout data for the six actions zero-shot maps to NTU (by default); `label`
    names the progress bar (the custom example is drawn from the same generator)."""
    config = UtdConfig(
        subjects=tuple(subjects),
        trials=tuple(trials),
        frames=tuple(frames),
        video_size=tuple(video_size),
        fps=int(fps),
        seed=int(seed),
        **_given(actions=actions),
    )
    root = Path(root)
    for sub in ("Skeleton", "RGB"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tasks = [(config, root, a, s, t) for a in config.actions for s in config.subjects for t in config.trials]
    rows = _run_tasks(utd_take, tasks, workers, progress, label)
    return _summary("utd-mhad", root, rows, started)


def generate_sysu(
    root: str | Path,
    *,
    subjects: Sequence[int] = SysuConfig.subjects,
    activities: Sequence[int] | None = None,
    per_subject: int | None = SysuConfig.per_subject,
    frames: tuple[int, int] = (40, 80),
    image_size: tuple[int, int] = (640, 480),
    fps: int = 30,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write SYSU-3D-HOI-layout data for the activities with a demo motion (by default); the
    JPEGs are `image_size`, the colour coordinates in sklImage.mat 640x480 pixels regardless.
    Each subject performs `per_subject` of the activities in rotation (None: all of them)."""
    config = SysuConfig(
        subjects=tuple(subjects),
        per_subject=per_subject,
        frames=tuple(frames),
        image_size=tuple(image_size),
        fps=int(fps),
        seed=int(seed),
        **_given(activities=activities),
    )
    root = Path(root)
    started = time.perf_counter()
    tasks = [(config, root, s, a) for s, a in config.takes()]
    rows = _run_tasks(sysu_take, tasks, workers, progress, "demo (SYSU layout)")
    return _summary("sysu", root, rows, started, codec="JPEG frames")
