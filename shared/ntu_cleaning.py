"""The standard NTU RGB+D skeleton cleaning, as CTR-GCN's (and SGN's) preprocessing scripts do it.

The rules replicate `data/ntu*/get_raw_skes_data.py`, `get_raw_denoised_data.py` and
`seq_transformation.py` of Uason-Chen/CTR-GCN, step for step, including their quirks, so
that a cached sample holds the frames and actors the reference training data holds:

1. Frames without bodies are dropped; each body's data is laid out from its first frame on
   consecutive kept frames (the reference counts a body's frames, it does not look up where
   they are: a body that vanishes and returns is shifted; kept on purpose).
2. A file with one body keeps it, whatever its length. With several bodies:
   a. bodies tracked for <= 11 frames are dropped;
   b. spread: a frame is noisy when x-spread > 0.8 * y-spread; going through the bodies in order
      of appearance while more than one is left, a body with >= 69.754 % noisy frames is
      dropped, otherwise its motion becomes min(motion, motion over its non-noisy frames);
   c. the rest are ranked by motion (sum over x, y, z of the variance over frames and joints);
   d. actor 1 is the most moving body; each next body joins actor 1 when its frame interval
      does not overlap actor 1's, else actor 2 when it does not overlap actor 2's (whose interval
      starts at 0, as the reference initialises it), else it is dropped;
   e. frames where the selected actors' coordinates sum to 0 are dropped.
3. Frames with a NaN coordinate are dropped: `remove_nan_frames` of seq_transformation.py.
   Its main never calls it (only the unused `frame_translation` does), but the published
   protocol drops NaN frames; `CleaningConfig.drop_nan_frames=False` keeps them.

What the reference does next is not done here: the cache stores camera coordinates and
`shared.normalization` translates them; there is no padding to 300 frames. A lone actor's
second slot stays zero as in the NTU60 script (the NTU120 script copies actor 1 into it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SkeletonFormatError
from .ntu_skeleton import NUM_JOINTS, RawBody, RawSkeleton, read_ntu_skeleton

NUM_ACTORS = 2


@dataclass(frozen=True)
class CleaningConfig:
    length_threshold: int = 11  # bodies tracked for <= this many frames are noise
    spread_ratio: float = 0.8  # a frame is noisy when x-spread > spread_ratio * y-spread
    noisy_fraction: float = 0.69754  # drop a body when this share of its frames is noisy
    drop_nan_frames: bool = True


DEFAULT_CLEANING = CleaningConfig()


@dataclass
class CleanSkeleton:
    joints: np.ndarray  # (T, 2, 25, 3) float32 camera coordinates; zeros where an actor is absent
    color_xy: np.ndarray  # (T, 2, 25, 2) float32 colour-image pixels; zeros where absent
    frame_index: np.ndarray  # (T,) int32: each kept frame's index in the original file

    @property
    def num_frames(self) -> int:
        return len(self.frame_index)


@dataclass(eq=False)
class _Track:
    """A body as the reference sees it: data on consecutive kept frames from `start` on."""

    body_id: str
    start: int
    joints: np.ndarray  # (Tb, 25, 3) float32
    color_xy: np.ndarray  # (Tb, 25, 2) float32
    motion: np.float32

    @property
    def end(self) -> int:  # inclusive, as the reference's interval[-1]
        return self.start + len(self.joints) - 1


def clean_ntu(raw: RawSkeleton, config: CleaningConfig = DEFAULT_CLEANING) -> CleanSkeleton:
    """Select at most two actors and the usable frames of a parsed `.skeleton` file.

    Raises SkeletonFormatError when no body or no frame survives (such samples are among the
    dataset's published missing-skeleton lists, or crash the reference scripts).
    """
    kept_frames = _frames_with_bodies(raw)
    tracks = [_track(body, kept_frames) for body in raw.bodies]

    if len(tracks) == 1:
        joints, colors = _place([[tracks[0]], []], len(kept_frames))
    else:
        ranked = _denoise(raw.name, tracks, config)
        joints, colors = _place(_assign_actors(ranked), len(kept_frames))
        num_actors = 1 if len(ranked) == 1 else NUM_ACTORS
        # The reference sums the selected actors' 75 or 150 values and drops frames summing to 0.
        totals = joints[:, :num_actors].reshape(len(joints), -1).sum(axis=1)
        keep = totals != 0
        joints, colors, kept_frames = joints[keep], colors[keep], kept_frames[keep]

    if config.drop_nan_frames:
        keep = ~np.isnan(joints).reshape(len(joints), -1).any(axis=1)
        joints, colors, kept_frames = joints[keep], colors[keep], kept_frames[keep]
    if len(joints) == 0:
        raise SkeletonFormatError(raw.name, "no usable frame after cleaning (all NaN or empty)")
    return CleanSkeleton(joints=joints, color_xy=colors, frame_index=kept_frames.astype(np.int32))


# ----------------------------------------------------------------------------------------------
# Steps
# ----------------------------------------------------------------------------------------------


def _frames_with_bodies(raw: RawSkeleton) -> np.ndarray:
    """Original indices of the frames holding at least one body (the reference's valid frames)."""
    if not raw.bodies:
        raise SkeletonFormatError(raw.name, f"no body in any of its {raw.num_frames} frames")
    return np.unique(np.concatenate([b.frames for b in raw.bodies]))


def _track(body: RawBody, kept_frames: np.ndarray) -> _Track:
    start = int(np.searchsorted(kept_frames, body.frames[0]))
    return _Track(body.body_id, start, body.joints, body.color_xy, _motion(body.joints))


def _motion(joints: np.ndarray) -> np.float32:
    """Sum over x, y, z of the variance over all frames and joints, in float32 as the reference."""
    with np.errstate(over="ignore", invalid="ignore"):  # an infinite coordinate: rejected after cleaning
        return np.var(joints.reshape(-1, 3), axis=0).sum()


def _noisy_frames(joints: np.ndarray, ratio: float) -> np.ndarray:
    """(Tb,) bool: frames whose x-spread exceeds ratio * y-spread (NaN frames count as noisy)."""
    spread = joints[..., :2].max(axis=1) - joints[..., :2].min(axis=1)  # (Tb, 2) float32
    # The reference compared float32 spreads with a float64 product (NumPy 1 scalar rules).
    spread = spread.astype(np.float64)
    return ~(spread[:, 0] <= ratio * spread[:, 1])


def _denoise(name: str, tracks: list[_Track], config: CleaningConfig) -> list[_Track]:
    """Length and spread filters, then the bodies ranked by motion, most moving first."""
    tracks = [t for t in tracks if len(t.joints) > config.length_threshold]
    if not tracks:
        raise SkeletonFormatError(name, f"no body is tracked for more than {config.length_threshold} frames")

    kept = list(tracks)
    for track in tracks:  # sequential on purpose: the reference stops at one remaining body
        if len(kept) == 1:
            break
        noisy = _noisy_frames(track.joints, config.spread_ratio)
        num_noisy = int(noisy.sum())
        if num_noisy == 0:
            continue
        if num_noisy / len(noisy) >= config.noisy_fraction:
            kept.remove(track)
        else:
            track.motion = min(track.motion, _motion(track.joints[~noisy]))
    # Python's stable sort, as the reference: ties keep the order of appearance.
    return sorted(kept, key=lambda t: t.motion, reverse=True)


def _overlaps(start: int, end: int, other_start: int, other_end: int) -> bool:
    return min(other_end, end) - max(other_start, start) > 0


def _assign_actors(ranked: list[_Track]) -> list[list[_Track]]:
    """Bodies of actor 1 and actor 2, in the order the reference writes them."""
    first, rest = ranked[0], ranked[1:]
    actors: list[list[_Track]] = [[first], []]
    start1, end1 = first.start, first.end
    start2, end2 = 0, 0  # the reference's "virtual" initial interval of actor 2
    for track in rest:
        if not _overlaps(track.start, track.end, start1, end1):
            actors[0].append(track)
            start1, end1 = min(track.start, start1), max(track.end, end1)
        elif not _overlaps(track.start, track.end, start2, end2):
            actors[1].append(track)
            start2, end2 = min(track.start, start2), max(track.end, end2)
    return actors


def _place(actors: list[list[_Track]], num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2, 25, 3) joints and (T, 2, 25, 2) colours; later bodies overwrite shared frames."""
    joints = np.zeros((num_frames, NUM_ACTORS, NUM_JOINTS, 3), np.float32)
    colors = np.zeros((num_frames, NUM_ACTORS, NUM_JOINTS, 2), np.float32)
    for m, tracks in enumerate(actors):
        for t in tracks:
            joints[t.start : t.end + 1, m] = t.joints
            colors[t.start : t.end + 1, m] = t.color_xy
    return joints, colors


# ----------------------------------------------------------------------------------------------
# Many files
# ----------------------------------------------------------------------------------------------


def read_and_clean(path: str | Path, config: CleaningConfig = DEFAULT_CLEANING) -> CleanSkeleton:
    """Parse and clean one file; errors name the file."""
    raw = read_ntu_skeleton(path)
    try:
        return clean_ntu(raw, config)
    except SkeletonFormatError as e:  # clean_ntu knows the sample name, not the path
        raise SkeletonFormatError(path, e.problem) from None
