"""The temporal image: K frames sampled at equal intervals, each cropped to the person, stitched left
to right in time order into one image.

The reference found the people with a detector; the skeleton files already carry every joint's
pixel position in the colour stream (NTU colorX/colorY), so the box here is the union of all
tracked joints of all actors in that frame, with a margin. A frame without tracked joints keeps the
whole frame. Boxes are widened to the aspect ratio of their slot in the stitched image so that no
crop is distorted; a box that cannot be widened inside the frame is letterboxed instead.

Without colour coordinates (NW-UCLA, CTR-GCN npz imports) the joints' 3D camera positions are
projected with the sensor's colour intrinsics where the layout names a sensor whose intrinsics are
known (Kinect v1: the SDK's nominal 531.15 px focal length at 640x480; the colour camera sits a few
centimetres beside the depth camera, which the margin absorbs). Joints nearer than the sensor's
range (centred coordinates, as in CTR-GCN's npz) count as untracked. Otherwise whole frames are
used, and `box_source` says so: the feature file records it and the run warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from shared.utd_skeleton import COLOR_FOCAL_PX, COLOR_RESOLUTION, project_to_color

from .video import open_frames

CELL_SIZE = (224, 448)  # default slot per frame: a standing person is about twice as tall as wide
MIN_DEPTH_M = 0.4  # Kinect v1's nearest range: nearer joints are not camera coordinates
PROJECTED_LAYOUTS = ("kinect_v1",)  # layouts whose sensor's colour intrinsics are known
BOX_FROM_COLOUR = "colour coordinates"
BOX_PROJECTED = (
    f"3D joints projected, Kinect v1 colour intrinsics (f {COLOR_FOCAL_PX} px, "
    f"{COLOR_RESOLUTION[0]}x{COLOR_RESOLUTION[1]})"
)
BOX_WHOLE_FRAME = "whole frames: no colour coordinates and no known intrinsics for this layout"


@dataclass(frozen=True)
class TemporalImageConfig:
    frames: int = 5  # K
    size: tuple[int, int] | None = None  # stitched (W, H); None = K slots of CELL_SIZE
    margin: float = 0.15  # added on every side, as a fraction of the box's longer side
    min_box: float = 0.1  # smallest box side, as a fraction of the frame height (one lone joint)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.size or (CELL_SIZE[0] * self.frames, CELL_SIZE[1])

    @property
    def slots(self) -> np.ndarray:
        """x boundaries of the K slots, (K+1,): widths differ by at most one pixel."""
        return np.round(np.linspace(0, self.image_size[0], self.frames + 1)).astype(int)

    @property
    def slot_aspect(self) -> float:
        w, h = self.image_size
        return w / self.frames / h


@dataclass
class TemporalImage:
    image: Image.Image  # the stitched image, config.image_size
    crops: list[Image.Image]  # the K crops, one per slot
    frame_indices: np.ndarray  # (K,) sampled video frames
    boxes: np.ndarray  # (K, 4) crop boxes x0, y0, x1, y1 in video pixels


def skeleton_rows(frame_index: np.ndarray, video_frames: np.ndarray) -> np.ndarray:
    """For each sampled video frame, the skeleton row of the nearest kept frame (cleaning drops
    frames, so the exact frame may have no skeleton)."""
    frame_index = np.asarray(frame_index)
    right = np.clip(np.searchsorted(frame_index, video_frames), 0, len(frame_index) - 1)
    left = np.clip(right - 1, 0, len(frame_index) - 1)
    closer_left = np.abs(frame_index[left] - video_frames) < np.abs(frame_index[right] - video_frames)
    return np.where(closer_left, left, right)


def scale_points(color_xy: np.ndarray, resolution: tuple[int, int], frame_size: tuple[int, int]) -> np.ndarray:
    """Colour coordinates (..., 2) given at `resolution` (W, H), in pixels of the decoded frames.
    Untracked joints (stored as exactly 0, 0) and non-finite values become NaN."""
    pts = np.asarray(color_xy, np.float64)
    untracked = ~np.isfinite(pts).all(-1) | (pts == 0).all(-1)
    scale = np.asarray(frame_size, np.float64) / np.asarray(resolution, np.float64)
    pts = pts * scale
    pts[untracked] = np.nan
    return pts


def box_source(has_color: bool, layout_name: str) -> str:
    """How the crop boxes of a dataset's temporal images are found (BOX_*)."""
    if has_color:
        return BOX_FROM_COLOUR
    return BOX_PROJECTED if layout_name in PROJECTED_LAYOUTS else BOX_WHOLE_FRAME


def projected_points(joints: np.ndarray) -> np.ndarray:
    """Kinect v1 colour pixels (..., 2) at COLOR_RESOLUTION of camera-space joints (..., 3) in
    metres; joints nearer than MIN_DEPTH_M become (0, 0), the cache's "untracked"."""
    joints = np.array(joints, np.float64)
    joints[~(joints[..., 2] >= MIN_DEPTH_M)] = 0  # also NaN depths
    return project_to_color(joints)


def person_boxes(points: np.ndarray, frame_size: tuple[int, int], config: TemporalImageConfig) -> np.ndarray:
    """Crop boxes (K, 4) from joint positions (K, P, 2) in frame pixels (NaN = untracked): the union
    box of all P points, plus margin, widened to the slot's aspect ratio and shifted inside the
    frame. Frames without a tracked point get the whole frame."""
    w_img, h_img = frame_size
    pts = np.asarray(points, np.float64).reshape(len(points), -1, 2)
    finite = np.isfinite(pts).all(-1, keepdims=True)  # (K, P, 1)
    tracked = finite.any(1)[:, 0]
    lo = np.where(finite, pts, np.inf).min(1)  # (K, 2); rows without a point are replaced below
    hi = np.where(finite, pts, -np.inf).max(1)
    lo, hi = np.clip(lo, 0, frame_size), np.clip(hi, 0, frame_size)
    centre = (lo + hi) / 2
    side = hi - lo
    side = side + 2 * config.margin * side.max(-1, keepdims=True)
    side = np.maximum(side, config.min_box * h_img)
    # widen the narrow side to the slot's aspect, then cap at the frame (letterboxed later)
    aspect = config.slot_aspect
    side = np.stack([np.maximum(side[:, 0], side[:, 1] * aspect), np.maximum(side[:, 1], side[:, 0] / aspect)], -1)
    side = np.minimum(side, frame_size)
    start = np.clip(centre - side / 2, 0, np.asarray(frame_size) - side)
    boxes = np.concatenate([start, start + side], -1)
    boxes[~tracked] = (0, 0, w_img, h_img)
    return np.round(boxes).astype(np.int64)


def stitch(crops: list[Image.Image], config: TemporalImageConfig) -> Image.Image:
    """Paste the crops left to right into their slots."""
    image = Image.new("RGB", config.image_size)
    for crop, x0 in zip(crops, config.slots[:-1]):
        image.paste(crop, (int(x0), 0))
    return image


def compose(
    frames: np.ndarray, boxes: np.ndarray, config: TemporalImageConfig
) -> tuple[Image.Image, list[Image.Image]]:
    """Crop each frame (K, H, W, 3) to its box, fit it into its slot, and stitch."""
    height, widths = config.image_size[1], np.diff(config.slots)
    crops = []
    for frame, (x0, y0, x1, y1), width in zip(frames, boxes, widths):
        crop = Image.fromarray(np.ascontiguousarray(frame[y0:y1, x0:x1]))  # converts only the crop to PIL
        crops.append(ImageOps.pad(crop, (int(width), height), method=Image.Resampling.BILINEAR))
    return stitch(crops, config), crops


def from_frames(
    frames: np.ndarray,
    indices: np.ndarray,
    skeleton: dict[str, np.ndarray],
    color_resolution: tuple[int, int] | None,
    config: TemporalImageConfig,
    layout_name: str = "",
) -> TemporalImage:
    """The temporal image of sampled frames (K, H, W, 3) at video frame `indices`, cropped with the
    sample's skeleton cache entry (`frame_index`, and `color_xy` where the dataset has colour
    coordinates, given at `color_resolution`; else `joints` projected as box_source says)."""
    frame_size = (frames.shape[2], frames.shape[1])
    source = box_source("color_xy" in skeleton and color_resolution is not None, layout_name)
    rows = skeleton_rows(skeleton["frame_index"], indices)
    if source == BOX_FROM_COLOUR:
        points = scale_points(skeleton["color_xy"][rows], color_resolution, frame_size)
    elif source == BOX_PROJECTED and "joints" in skeleton:
        points = scale_points(projected_points(skeleton["joints"][rows]), COLOR_RESOLUTION, frame_size)
    else:
        points = np.full((len(frames), 1, 2), np.nan)
    boxes = person_boxes(points, frame_size, config)
    image, crops = compose(frames, boxes, config)
    return TemporalImage(image, crops, indices, boxes)


def temporal_image(
    video: Path,
    skeleton: dict[str, np.ndarray],
    color_resolution: tuple[int, int] | None,
    config: TemporalImageConfig,
    layout_name: str = "",
) -> TemporalImage:
    """Decode K frames of `video` (a file or a frame folder) and make their temporal image."""
    frames, indices = open_frames(video).sample(config.frames)
    return from_frames(frames, indices, skeleton, color_resolution, config, layout_name)
