"""NTU RGB+D `.skeleton` files: a fast reader and a writer of the official text format.

Format (Kinect v2 SDK dump, one value group per line)::

    frameCount
    bodyCount                                   # per frame; may be 0
    bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
        handRightState isRestricted leanX leanY trackingState   # per body, one line
    jointCount                                  # 25
    x y z depthX depthY colorX colorY orientW orientX orientY orientZ trackingState  # x 25

Floats are written with 7 significant digits (C# `float.ToString()`), e.g. `0.2181153`,
`277.419`, `1.5E-05`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import SkeletonFormatError

NUM_JOINTS = 25
BODY_INFO_FIELDS = 10
JOINT_FIELDS = 12
DEPTH_RESOLUTION = (512, 424)
COLOR_RESOLUTION = (1920, 1080)
# Real body IDs are a Kinect tracking counter offset by 2**56 (e.g. 72057594037931101).
BODY_ID_BASE = 1 << 56


@dataclass
class RawBody:
    body_id: str
    frames: np.ndarray  # (Tb,) int: indices (into the file's frames) where the body appears
    joints: np.ndarray  # (Tb, 25, 3) float32 camera coordinates, metres
    color_xy: np.ndarray  # (Tb, 25, 2) float32 colour-image pixel coordinates


@dataclass
class RawSkeleton:
    name: str
    num_frames: int  # frameCount of the file, frames with 0 bodies included
    bodies: list[RawBody]  # in order of first appearance


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

_JOINT_LINE = " ".join(["%.7g"] * (JOINT_FIELDS - 1)) + " %d"
_NEWLINE = "\r\n"  # the dataset was dumped on Windows; the reader accepts either ending


def _format_body_id(body_id: int) -> str:
    body_id = int(body_id)
    if body_id < 0:
        raise ValueError(f"body id must be non-negative, got {body_id}")
    return str(body_id if body_id >= BODY_ID_BASE else BODY_ID_BASE + body_id)


def write_ntu_skeleton(
    path: str | Path, joints: np.ndarray, color_xy: np.ndarray, body_ids, present: np.ndarray | None = None
) -> None:
    """Write bodies as an official-format `.skeleton` file.

    joints (T, B, 25, 3) camera coordinates in metres; color_xy (T, B, 25, 2) pixel coordinates
    in the 1920x1080 colour image; body_ids (B,) ints (small ids are offset by 2**56 to look
    like real ones); present (T, B) bool, default all True (a frame may hold no body).
    Depth coordinates are the colour ones scaled to 512x424, orientations are zero and every
    joint is "tracked" (2): plausible values for fields that the cleaning never reads.
    """
    joints = np.asarray(joints, dtype=np.float64)
    color_xy = np.asarray(color_xy, dtype=np.float64)
    t, b = joints.shape[:2]
    if joints.shape != (t, b, NUM_JOINTS, 3) or color_xy.shape != (t, b, NUM_JOINTS, 2):
        raise ValueError(f"expected joints (T,B,25,3) and color_xy (T,B,25,2), got {joints.shape} and {color_xy.shape}")
    ids = [_format_body_id(i) for i in np.asarray(body_ids).reshape(-1)]
    if len(ids) != b:
        raise ValueError(f"{len(ids)} body ids for {b} bodies")
    present = np.ones((t, b), bool) if present is None else np.asarray(present, bool)
    if present.shape != (t, b):
        raise ValueError(f"present must be (T, B) = {(t, b)}, got {present.shape}")

    scale = np.asarray(DEPTH_RESOLUTION, np.float64) / np.asarray(COLOR_RESOLUTION, np.float64)
    rows = np.concatenate(
        [
            joints,
            color_xy * scale,
            color_xy,
            np.zeros((t, b, NUM_JOINTS, 4)),  # orientation W X Y Z
            np.full((t, b, NUM_JOINTS, 1), 2.0),  # trackingState: tracked
        ],
        axis=-1,
    )

    lines = [str(t)]
    for f in range(t):
        bodies = np.flatnonzero(present[f])
        lines.append(str(len(bodies)))
        for k in bodies:
            lines.append(f"{ids[k]} 0 1 1 1 1 0 0 0 2")
            lines.append(str(NUM_JOINTS))
            lines.extend(_JOINT_LINE % tuple(row) for row in rows[f, k])
    # C# writes "E-05" and "NaN" where %g writes "e-05" and "nan".
    text = _NEWLINE.join(lines).replace("e", "E").replace("nan", "NaN") + _NEWLINE
    Path(path).write_text(text, newline="")


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------

# Columns of a joint line that the cleaning and the temporal images use: x y z colorX colorY.
_USED_COLUMNS = (0, 1, 2, 5, 6)


@dataclass
class _BlockIndex:
    """Where things are in the file, found by walking its count lines."""

    block_lines: list[int]  # 0-based line index of each body's first joint line
    block_frames: list[int]  # frame of each body block
    block_ids: list[bytes]  # body ID of each block


def read_ntu_skeleton(path: str | Path) -> RawSkeleton:
    """Parse a `.skeleton` file; bodies keep their frames, NaN coordinates stay NaN.

    The file is split into lines once; only the count lines are visited in Python (one per
    frame, two per body) and the joint lines of the whole file are parsed by one
    `np.loadtxt` call, so a file costs a few milliseconds.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SkeletonFormatError(path, f"cannot be read ({e.strerror or e})") from None
    lines = data.rstrip().split(b"\n")
    if lines == [b""]:
        raise SkeletonFormatError(path, "empty file")
    num_frames = _count(path, lines, 0, "frame count")
    layout = _walk(path, lines, num_frames)
    values = _parse_joint_lines(path, lines, layout.block_lines)
    name = path.name[: -len(".skeleton")] if path.name.endswith(".skeleton") else path.stem
    return RawSkeleton(name=name, num_frames=num_frames, bodies=_group_bodies(layout, values))


def _count(path: Path, lines: list[bytes], i: int, what: str) -> int:
    """The non-negative integer on line i (0-based), or an error naming the 1-based line."""
    if i >= len(lines):
        raise SkeletonFormatError(path, f"file ends early: expected the {what} after the last line", line=len(lines))
    try:
        value = int(lines[i])
    except ValueError:
        problem = f"expected the {what} (an integer), found {_show(lines[i])}"
        raise SkeletonFormatError(path, problem, line=i + 1) from None
    if value < 0:
        raise SkeletonFormatError(path, f"negative {what} {value}", line=i + 1)
    return value


def _walk(path: Path, lines: list[bytes], num_frames: int) -> _BlockIndex:
    layout = _BlockIndex([], [], [])
    i = 1
    for frame in range(num_frames):
        num_bodies = _count(path, lines, i, f"body count of frame {frame}")
        i += 1
        seen: set[bytes] = set()
        for _ in range(num_bodies):
            if i >= len(lines):
                raise SkeletonFormatError(path, f"file ends early: expected a body of frame {frame}", line=len(lines))
            info = lines[i].split()
            if len(info) != BODY_INFO_FIELDS:
                raise SkeletonFormatError(
                    path,
                    f"expected a {BODY_INFO_FIELDS}-field body info line in frame {frame}, found {len(info)} fields",
                    line=i + 1,
                )
            body_id = info[0]
            if body_id in seen:  # the cleaning assumes one record per body and frame
                raise SkeletonFormatError(
                    path, f"body {body_id.decode(errors='replace')} appears twice in frame {frame}", line=i + 1
                )
            seen.add(body_id)
            num_joints = _count(path, lines, i + 1, "joint count")
            if num_joints != NUM_JOINTS:
                raise SkeletonFormatError(path, f"joint count {num_joints}, expected {NUM_JOINTS}", line=i + 2)
            i += 2
            if i + NUM_JOINTS > len(lines):
                raise SkeletonFormatError(
                    path,
                    f"file ends early: frame {frame} stops after {len(lines) - i} of {NUM_JOINTS} joint lines",
                    line=len(lines),
                )
            layout.block_lines.append(i)
            layout.block_frames.append(frame)
            layout.block_ids.append(body_id)
            i += NUM_JOINTS
    if i < len(lines):
        raise SkeletonFormatError(path, f"unexpected content after the last of {num_frames} frames", line=i + 1)
    return layout


def _parse_joint_lines(path: Path, lines: list[bytes], block_lines: list[int]) -> np.ndarray:
    """(num_blocks, 25, 5) float32: x y z colorX colorY of every body block."""
    if not block_lines:
        return np.zeros((0, NUM_JOINTS, len(_USED_COLUMNS)), np.float32)
    text = b"\n".join(b"\n".join(lines[s : s + NUM_JOINTS]) for s in block_lines)
    try:
        values = np.loadtxt(io.BytesIO(text), dtype=np.float32, usecols=_USED_COLUMNS, ndmin=2)
    except ValueError:
        raise _locate_bad_joint_line(path, lines, block_lines) from None
    return values.reshape(len(block_lines), NUM_JOINTS, len(_USED_COLUMNS))


def _locate_bad_joint_line(path: Path, lines: list[bytes], block_lines: list[int]) -> Exception:
    """Slow path, run only on a parse failure: find the first joint line that is wrong."""
    for start in block_lines:
        for i in range(start, start + NUM_JOINTS):
            fields = lines[i].split()
            if len(fields) < JOINT_FIELDS:
                return SkeletonFormatError(
                    path, f"joint line has {len(fields)} values, expected {JOINT_FIELDS}", line=i + 1
                )
            for k in _USED_COLUMNS:
                try:
                    float(fields[k])
                except ValueError:
                    return SkeletonFormatError(
                        path, f"malformed number {_show(fields[k])} in column {k + 1}", line=i + 1
                    )
    return SkeletonFormatError(path, "joint lines could not be parsed")


def _group_bodies(layout: _BlockIndex, values: np.ndarray) -> list[RawBody]:
    """One RawBody per body ID, in order of first appearance, frames ascending."""
    blocks_of: dict[bytes, list[int]] = {}
    for k, body_id in enumerate(layout.block_ids):
        blocks_of.setdefault(body_id, []).append(k)
    frames = np.asarray(layout.block_frames, dtype=np.int64)
    bodies = []
    for body_id, blocks in blocks_of.items():
        v = values[blocks]
        bodies.append(
            RawBody(
                body_id=body_id.decode(errors="replace"),
                frames=frames[blocks],
                joints=np.ascontiguousarray(v[..., :3]),
                color_xy=np.ascontiguousarray(v[..., 3:]),
            )
        )
    return bodies


def _show(token: bytes, limit: int = 40) -> str:
    text = token.strip().decode(errors="replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")
