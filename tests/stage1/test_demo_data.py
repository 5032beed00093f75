"""The demo generator writes the real layouts, readable by the project's own readers."""

from __future__ import annotations

from pathlib import Path

import decord
import numpy as np
import pytest
import scipy.io
from PIL import Image

from shared.errors import MMCLError
from shared.ntu_cleaning import read_and_clean
from shared.ntu_skeleton import read_ntu_skeleton
from shared.readers import list_samples, read_sample
from shared.registry import DEMO, SYSU, UTD_MHAD
from stage1_extract.demo.body import performer
from stage1_extract.demo.dataset import (
    MOTIONS,
    Imperfections,
    demo_sample_names,
    generate_demo,
    generate_sysu,
    generate_utd,
)

# A reduced demo: 2 subjects (one per setup) x camera 2 x replication 1 x every action, short
# clips, and faults in half the files so that the cleaning's cases are exercised.
SMALL = dict(subjects=(1, 2), cameras=(2,), replications=(1,), frames=(20, 30), seed=3)
FAULTS = Imperfections(noise_body_rate=0.5, empty_frame_rate=0.5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo")
    return root, generate_demo(root, **SMALL, faults=FAULTS, workers=1, progress=False)


def _files(summary: dict) -> dict[str, dict]:
    return {f["name"]: f for f in summary["files"]}


def test_files_exist_with_ntu_names(demo):
    root, summary = demo
    names = demo_sample_names(**SMALL)
    assert len(names) == 2 * len(DEMO.classes)
    assert sorted(summary["names"]) == names
    assert sorted(p.stem for p in (root / "nturgb+d_skeletons").glob("*.skeleton")) == names
    assert sorted(p.name for p in (root / "nturgb+d_rgb").glob("*.avi")) == [f"{n}_rgb.avi" for n in names]
    listing = list_samples(DEMO, root)
    assert [m.name for m, _ in listing.samples] == names and not listing.skipped
    for meta, _ in listing.samples:
        assert meta.camera == 2 and meta.replication == 1
        assert meta.setup == (1 if meta.subject % 2 else 2)


def test_skeletons_parse_and_clean(demo):
    root, summary = demo
    files = _files(summary)
    assert summary["noise_body_files"] and summary["empty_frame_files"]
    for name, info in files.items():
        path = root / "nturgb+d_skeletons" / f"{name}.skeleton"
        raw = read_ntu_skeleton(path)
        assert raw.num_frames == info["frames"]
        bodies = info["bodies"] + info["noise_body"]
        assert len(raw.bodies) == bodies
        noise = [b for b in raw.bodies if len(b.frames) <= 11]
        assert len(noise) == int(info["noise_body"])
        clean = read_and_clean(path)
        # The cleaning drops the spurious body and the frames without any body.
        assert clean.num_frames == info["frames"] - len(info["empty_frames"])
        assert not set(info["empty_frames"]) & set(clean.frame_index.tolist())
        present = np.abs(clean.joints).sum(axis=(0, 2, 3)) > 0
        assert present.tolist() == [True, info["bodies"] == 2]
        # Kinect camera coordinates of a person about 3 m away, standing on a floor below.
        joints = clean.joints[:, 0]
        assert 2.0 < np.median(joints[..., 2]) < 4.5
        head, foot = joints[:, 3, 1], joints[:, [15, 19], 1].min(1)
        assert np.all(head - foot > 0.8)


def test_two_person_action_has_two_bodies(demo):
    _, summary = demo
    for name, info in _files(summary).items():
        assert info["bodies"] == (2 if DEMO.parse_name(name).action == 58 else 1)


def test_videos_decode_with_the_skeletons_frame_count(demo):
    root, summary = demo
    for name, info in _files(summary).items():
        video = decord.VideoReader(str(root / "nturgb+d_rgb" / f"{name}_rgb.avi"))
        assert len(video) == info["frames"]
        assert video[0].shape == (180, 320, 3)


def test_colour_coordinates_land_on_the_person_in_the_video(demo):
    """The video is the 1920x1080 colour frame scaled down: the torso is where colorX/Y say."""
    root, summary = demo
    for name in summary["names"]:
        meta = DEMO.parse_name(name)
        clean = read_and_clean(root / "nturgb+d_skeletons" / f"{name}.skeleton")
        frames = decord.VideoReader(str(root / "nturgb+d_rgb" / f"{name}_rgb.avi"))
        t = int(clean.frame_index[0])
        x, y = clean.color_xy[0, 0, 1] * np.array([320 / 1920, 180 / 1080])  # SpineMid
        patch = frames[t].asnumpy()[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3)
        shirt = np.asarray(performer(SMALL["seed"], "ntu", meta.subject).look.shirt)
        assert np.abs(np.median(patch, 0) - shirt).max() < 40, name


def test_default_demo_has_train_and_test_samples_in_both_protocols():
    names = demo_sample_names()
    assert len(names) == 5 * 3 * 2 * len(DEMO.classes)
    for protocol in DEMO.protocols:
        split = [protocol.is_train(DEMO.parse_name(n)) for n in names]
        assert any(split) and not all(split), protocol.name


def test_same_seed_same_skeletons_whatever_the_workers(demo, tmp_path):
    root, _ = demo
    again = generate_demo(
        tmp_path, **{**SMALL, "subjects": (2,)}, actions=(1, 58), faults=FAULTS, workers=2, progress=False
    )
    assert len(again["names"]) == 2
    for name in again["names"]:
        rel = Path("nturgb+d_skeletons") / f"{name}.skeleton"
        assert (tmp_path / rel).read_bytes() == (root / rel).read_bytes()
    other = generate_demo(
        tmp_path / "other", **{**SMALL, "subjects": (2,), "seed": 4}, actions=(1,), workers=1, progress=False
    )
    rel = Path("nturgb+d_skeletons") / f"{other['names'][0]}.skeleton"
    assert (tmp_path / "other" / rel).read_bytes() != (root / rel).read_bytes()


def test_unknown_actions_and_cameras_are_refused(tmp_path):
    with pytest.raises(MMCLError, match="no demo motion"):
        generate_demo(tmp_path, actions=(2,), progress=False)
    with pytest.raises(MMCLError, match="cameras"):
        generate_demo(tmp_path, cameras=(4,), progress=False)


def test_every_demo_class_has_a_motion():
    assert sorted(MOTIONS) == sorted(c.action for c in DEMO.classes)


def test_utd_layout(tmp_path):
    summary = generate_utd(
        tmp_path, subjects=(1,), trials=(2,), actions=(3, 24), frames=(20, 30), workers=1, progress=False
    )
    assert sorted(summary["names"]) == ["a24_s1_t2", "a3_s1_t2"]
    for info in summary["files"]:
        name = info["name"]
        assert UTD_MHAD.parse_name(name) is not None
        d_skel = scipy.io.loadmat(tmp_path / "Skeleton" / f"{name}_skeleton.mat")["d_skel"]
        assert d_skel.shape == (20, 3, info["frames"])
        # UTD order: joint 1 is the head, highest in the first (resting) frame; then the
        # shoulder centre, spine and hip centre going down.
        y = d_skel[:, 1, 0]
        assert np.argmax(y) == 0 and y[0] > y[1] > y[2] > y[3]
        sample = read_sample("utd-mhad", tmp_path / "Skeleton" / f"{name}_skeleton.mat")
        assert sample.joints.shape == (info["frames"], 1, 20, 3)
        video = decord.VideoReader(str(tmp_path / "RGB" / f"{name}_color.avi"))
        assert len(video) == info["frames"] and video[0].shape == (480, 640, 3)


def test_sysu_layout(tmp_path):
    summary = generate_sysu(
        tmp_path, subjects=(2,), activities=(1, 7), per_subject=None, frames=(20, 30), workers=1, progress=False
    )
    assert sorted(summary["names"]) == ["s02_a01", "s02_a07"]
    listing = list_samples(SYSU, tmp_path)
    assert [m.name for m, _ in listing.samples] == ["s02_a01", "s02_a07"]
    for info in summary["files"]:
        activity = int(info["name"][-2:])
        folder = tmp_path / "3DvideoNorm" / "s02" / f"video{activity}"
        sw = scipy.io.loadmat(folder / "sklWorld.mat")["SW"]
        assert sw.shape == (20, 3, info["frames"])
        assert np.argmax(sw[:, 1, 0]) == 3  # Kinect v1 SDK order: joint 4 is the head
        assert scipy.io.loadmat(folder / "sklImage.mat")["S"].shape == (20, 2, info["frames"])
        frames = sorted((folder / "rgb").glob("*.jpg"))
        assert [f.name for f in frames[:2]] == ["00001.jpg", "00002.jpg"]
        assert len(frames) == info["frames"] and Image.open(frames[0]).size == (640, 480)
        sample = read_sample("sysu", folder / "sklWorld.mat")
        assert sample.joints.shape == (info["frames"], 1, 20, 3)


def test_sysu_colour_coordinates_are_640x480_pixels_whatever_the_image_size(tmp_path):
    """sklImage.mat holds pixels of the registry's 640x480 colour frame; smaller JPEGs are that
    frame scaled, so the scaled coordinates land on the person's shirt."""
    size = (320, 240)
    generate_sysu(tmp_path, subjects=(1,), activities=(7,), frames=(20, 24), image_size=size, workers=1, progress=False)
    folder = tmp_path / "3DvideoNorm" / "s01" / "video7"
    sample = read_sample("sysu", folder / "sklWorld.mat")
    scale = np.asarray(size) / np.asarray(SYSU.color_resolution)
    shirt = np.asarray(performer(0, "sysu", 1).look.shirt)
    t = int(sample.frame_index[0])
    x, y = sample.color_xy[0, 0, 1] * scale  # Kinect v1 Spine, on the torso
    image = np.asarray(Image.open(folder / "rgb" / f"{t + 1:05d}.jpg"))
    assert image.shape[:2] == size[::-1]
    patch = image[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3)
    assert np.abs(np.median(patch, 0) - shirt).max() < 40
