"""SYSU-3D-HOI skeletons in the release layout `3DvideoNorm/<Subject>/video{1..12}/`.

Each sample folder holds `sklWorld.mat` (variable `SW`, 20 x 3 x T, metres, Kinect v1 SDK order,
one person), `sklImage.mat` (variable `S`, 20 x 2 x T colour-image pixels, 640 x 480) where the
release has it, and the RGB frames in `rgb/`. `video<k>` is activity k (the registry's order).

Sample names are `s{subject:02d}_a{activity:02d}`. The release names subject folders freely, so
the subject id is the number in the folder's name when every subject folder has exactly one
(distinct) number, else the folder's 1-based rank in natural sort order. The first rule keeps ids
stable when a subject folder is missing; both are deterministic, and `sample_dir` inverts them.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from .errors import MMCLError, SkeletonFormatError
from .kinect_v1_mat import clean_kinect_v1, frames_first, load_mat_array
from .skeleton_sample import SkeletonSample

WORLD_FILE, WORLD_VARIABLE = "sklWorld.mat", "SW"
IMAGE_FILE, IMAGE_VARIABLE = "sklImage.mat", "S"
VIDEO_DIR = re.compile(r"video(\d+)")
SAMPLE_NAME = "s{subject:02d}_a{activity:02d}"


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _video_dirs(subject_dir: Path) -> dict[int, Path]:
    """activity -> `video<k>` folder of one subject."""
    out = {}
    for p in subject_dir.iterdir():
        m = VIDEO_DIR.fullmatch(p.name)
        if m and p.is_dir():
            out[int(m.group(1))] = p
    return out


def subject_dirs(folder) -> dict[int, Path]:
    """subject id -> subject folder, for every folder under `folder` holding `video<k>` folders."""
    dirs = sorted(
        (p for p in Path(folder).iterdir() if p.is_dir() and _video_dirs(p)), key=lambda p: _natural_key(p.name)
    )
    numbers = [re.findall(r"\d+", p.name) for p in dirs]
    if all(len(n) == 1 for n in numbers) and len({int(n[0]) for n in numbers}) == len(dirs):
        return {int(n[0]): p for n, p in zip(numbers, dirs)}
    return {rank: p for rank, p in enumerate(dirs, start=1)}


def list_sysu(folder) -> list[tuple[str, Path]]:
    """(sample name, path of its sklWorld.mat) for every `<Subject>/video<k>/` under `folder`.

    A sample folder without sklWorld.mat is listed too: reading it fails, and the cache builder
    records that failure instead of the sample vanishing silently."""
    return [
        (SAMPLE_NAME.format(subject=s, activity=a), video / WORLD_FILE)
        for s, subject in subject_dirs(folder).items()
        for a, video in sorted(_video_dirs(subject).items())
    ]


@functools.lru_cache(maxsize=4)
def _subject_dirs_cached(folder: str) -> dict[int, Path]:
    return subject_dirs(folder)


def sample_dir(folder, name: str) -> Path:
    """The `<Subject>/video<k>` folder of sample `name` (its RGB frames are in `rgb/`).

    Called once per sample by stage 1, so the subject listing is cached per process."""
    m = re.fullmatch(r"s(\d+)_a(\d+)", name)
    subjects = _subject_dirs_cached(str(folder))
    if m is None or int(m.group(1)) not in subjects:
        raise MMCLError(f"{folder}: no SYSU-3D-HOI subject folder for sample {name!r}")
    return subjects[int(m.group(1))] / f"video{int(m.group(2))}"


def read_sysu(path) -> SkeletonSample:
    """One sample from its sklWorld.mat (or its folder): joints (T, 1, 20, 3) float32, the kept
    frames' indices, and colour pixels (T, 1, 20, 2) from sklImage.mat beside it, else None."""
    path = Path(path)
    if path.is_dir():
        path = path / WORLD_FILE
    world = frames_first(path, WORLD_VARIABLE, load_mat_array(path, WORLD_VARIABLE), channels=3)
    frames = clean_kinect_v1(path, world)
    color = None
    image_path = path.with_name(IMAGE_FILE)
    if image_path.is_file():
        image = frames_first(image_path, IMAGE_VARIABLE, load_mat_array(image_path, IMAGE_VARIABLE), channels=2)
        if len(image) != len(world):
            raise SkeletonFormatError(image_path, f"{len(image)} frames, but {path.name} beside it has {len(world)}")
        color = np.nan_to_num(image[frames.frame_index, None]).astype(np.float32)
    return SkeletonSample(frames.joints[:, None], frames.frame_index, color)
