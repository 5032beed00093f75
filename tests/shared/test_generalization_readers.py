"""UTD-MHAD and SYSU-3D-HOI readers on small MATLAB files in the releases' layouts."""

import h5py
import numpy as np
import pytest
import scipy.io

from shared.cache_schema import SkeletonCache
from shared.errors import SkeletonFormatError
from shared.layouts import UTD_TO_KINECT_V1_1BASED
from shared.readers import read_sample
from shared.registry import SYSU, UTD_MHAD
from shared.sysu_skeleton import list_sysu, read_sysu, sample_dir, subject_dirs
from shared.utd_skeleton import project_to_color, read_utd_mat
from stage1_extract.skeleton_cache import build_skeleton_cache
from test_layouts import v1_pose

UTD_ORDER = np.asarray(UTD_TO_KINECT_V1_1BASED) - 1  # UTD joint i is Kinect v1 joint UTD_ORDER[i]


def v1_sequence(t: int, seed: int = 0) -> np.ndarray:
    """(T, 20, 3) Kinect v1 joints: the hand-built pose swaying a little."""
    rng = np.random.default_rng(seed)
    return v1_pose()[None] + rng.normal(scale=0.01, size=(t, 20, 3)).astype(np.float32)


def joints_last(joints: np.ndarray) -> np.ndarray:
    """(T, 20, C) -> the releases' 20 x C x T."""
    return np.ascontiguousarray(np.moveaxis(joints, 0, -1)).astype(np.float64)


def write_utd(folder, name: str, v1_joints: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / f"{name}_skeleton.mat", {"d_skel": joints_last(v1_joints[:, UTD_ORDER])})


def write_sysu(video_dir, world: np.ndarray | None, image: np.ndarray | None = None) -> None:
    video_dir.mkdir(parents=True, exist_ok=True)
    if world is not None:
        scipy.io.savemat(video_dir / "sklWorld.mat", {"SW": joints_last(world)})
    if image is not None:
        scipy.io.savemat(video_dir / "sklImage.mat", {"S": joints_last(image)})


# --------------------------------------------------------------------------- UTD-MHAD


def test_utd_reader_returns_sdk_order_and_drops_untracked_frames(tmp_path):
    seq = v1_sequence(6)
    seq[2] = 0  # an untracked frame
    write_utd(tmp_path, "a3_s1_t1", seq)
    sample = read_utd_mat(tmp_path / "a3_s1_t1_skeleton.mat")
    assert sample.joints.shape == (5, 1, 20, 3) and sample.joints.dtype == np.float32
    np.testing.assert_allclose(sample.joints[:, 0], seq[[0, 1, 3, 4, 5]], atol=1e-6)
    assert sample.frame_index.tolist() == [0, 1, 3, 4, 5]
    assert sample.color_xy.shape == (5, 1, 20, 2)
    # the read goes through the dataset-independent entry point too
    assert read_sample("utd-mhad", tmp_path / "a3_s1_t1_skeleton.mat").joints.shape == (5, 1, 20, 3)


def test_utd_colour_projection_is_a_centred_pinhole():
    pts = np.array([[0.0, 0.0, 2.0], [0.5, 0.5, 2.0], [0.0, 0.0, 0.0]])
    uv = project_to_color(pts)
    np.testing.assert_allclose(uv[0], [320, 240])
    assert uv[1, 0] > 320 and uv[1, 1] < 240  # up in space is up in the image
    assert (uv[2] == 0).all()  # untracked stays untracked


def test_utd_one_frame_file_and_v73_file(tmp_path):
    write_utd(tmp_path, "a1_s1_t1", v1_sequence(1))  # MATLAB drops the trailing singleton
    assert read_utd_mat(tmp_path / "a1_s1_t1_skeleton.mat").joints.shape == (1, 1, 20, 3)
    seq = v1_sequence(4)
    path = tmp_path / "a1_s1_t2_skeleton.mat"
    with h5py.File(path, "w", userblock_size=512) as f:  # v7.3: HDF5, arrays transposed
        f["d_skel"] = joints_last(seq[:, UTD_ORDER]).T
    with open(path, "r+b") as f:  # MATLAB's text header in the user block
        f.write(b"MATLAB 7.3 MAT-file".ljust(116) + bytes(8) + b"\x00\x02IM")
    np.testing.assert_allclose(read_utd_mat(path).joints[:, 0], seq, atol=1e-6)


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "not a readable MATLAB file"),
        ({"other": np.zeros((20, 3, 4))}, "no variable 'd_skel'"),
        ({"d_skel": np.zeros((25, 3, 4))}, "shape (25, 3, 4)"),
        ({"d_skel": np.zeros((20, 3, 4))}, "no tracked frame"),
        ({"d_skel": "text"}, "not a numeric array"),
        ({"d_skel": joints_last(1000 * v1_sequence(3)[:, UTD_ORDER])}, "metres"),  # millimetres
        ({"d_skel": joints_last(v1_sequence(3)[:, ::-1])}, "head is below the hip"),  # wrong order
    ],
)
def test_utd_bad_files_name_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "a1_s1_t1_skeleton.mat"
    if content is None:
        path.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    else:
        scipy.io.savemat(path, content)
    with pytest.raises(SkeletonFormatError) as e:
        read_utd_mat(path)
    assert str(path) in str(e.value) and problem in str(e.value)


def test_utd_cache_records_a_broken_file_and_keeps_the_rest(tmp_path):
    root = tmp_path / "utd"
    for i, name in enumerate(["a3_s1_t1", "a6_s2_t1", "a27_s8_t4"]):
        write_utd(root / "Skeleton", name, v1_sequence(5 + i, seed=i))
    (root / "Skeleton" / "a24_s1_t1_skeleton.mat").write_bytes(b"garbage")
    path = build_skeleton_cache(UTD_MHAD, root, tmp_path / "cache", workers=1, progress=False)
    cache = SkeletonCache(path)
    assert cache.names == ["a27_s8_t4", "a3_s1_t1", "a6_s2_t1"]
    assert cache.labels.tolist() == [26, 2, 5] and cache.num_joints == 20 and cache.has_color
    assert [(n, s) for n, s, _ in cache.failures] == [("a24_s1_t1", "skeleton")]
    assert "a24_s1_t1_skeleton.mat" in cache.failures[0][2]


# --------------------------------------------------------------------------- SYSU-3D-HOI


def test_sysu_listing_follows_the_release_layout(tmp_path):
    root = tmp_path / "3DvideoNorm"
    for subject in ("P2", "P10"):
        for k in (1, 12):
            write_sysu(root / subject / f"video{k}", v1_sequence(3))
    write_sysu(root / "P10" / "video5", None)  # a sample folder whose skeleton is missing
    (root / "notes").mkdir()  # not a subject folder
    names = [n for n, _ in list_sysu(root)]
    assert names == ["s02_a01", "s02_a12", "s10_a01", "s10_a05", "s10_a12"]
    assert sample_dir(root, "s10_a12") == root / "P10" / "video12"
    assert SYSU.parse_name("s10_a12").subject == 10 and SYSU.parse_name("s10_a12").action == 12


def test_sysu_subjects_without_numbers_are_numbered_in_sorted_order(tmp_path):
    for subject in ("bob", "alice", "carol"):
        (tmp_path / subject / "video1").mkdir(parents=True)
    assert {s: p.name for s, p in subject_dirs(tmp_path).items()} == {1: "alice", 2: "bob", 3: "carol"}


def test_sysu_reader_with_and_without_image_coordinates(tmp_path):
    world = v1_sequence(5)
    world[0] = 0
    image = np.random.default_rng(1).uniform(0, 600, size=(5, 20, 2))
    write_sysu(tmp_path / "a", world, image)
    sample = read_sysu(tmp_path / "a" / "sklWorld.mat")
    assert sample.joints.shape == (4, 1, 20, 3) and sample.frame_index.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(sample.joints[:, 0], world[1:], atol=1e-6)
    np.testing.assert_allclose(sample.color_xy[:, 0], image[1:], atol=1e-4)
    write_sysu(tmp_path / "b", world)
    assert read_sysu(tmp_path / "b").color_xy is None  # the sample folder works as well
    write_sysu(tmp_path / "c", world, image[:3])
    with pytest.raises(SkeletonFormatError, match="3 frames"):
        read_sysu(tmp_path / "c")
    with pytest.raises(SkeletonFormatError, match="no such file"):
        read_sysu(tmp_path / "d" / "sklWorld.mat")


def test_sysu_cache_with_protocol_split_and_recorded_failure(tmp_path):
    root = tmp_path / "sysu"
    for subject, k in ((1, 1), (1, 3), (30, 7)):
        write_sysu(
            root / "3DvideoNorm" / f"{subject}" / f"video{k}", v1_sequence(4, seed=k), np.full((4, 20, 2), 100.0)
        )
    write_sysu(root / "3DvideoNorm" / "30" / "video8", None)
    path = build_skeleton_cache(SYSU, root, tmp_path / "cache", workers=1, progress=False)
    cache = SkeletonCache(path)
    assert cache.names == ["s01_a01", "s01_a03", "s30_a07"]
    assert cache.splits["xsub"].tolist() == [True, True, False]  # subjects 1-20 train
    assert cache.labels.tolist() == [0, 2, 6]
    assert [n for n, _, _ in cache.failures] == ["s30_a08"]
    assert (cache.sample(0)["color_xy"] == 100).all()
