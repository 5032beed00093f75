"""The NTU `.skeleton` writer and reader: round trip, the real files' format, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.errors import SkeletonFormatError
from shared.ntu_skeleton import BODY_ID_BASE, read_ntu_skeleton, write_ntu_skeleton

# The first body of S001C001P001R001A001.skeleton as the dataset ships it (first two joints).
REAL_EXCERPT = (
    "1\r\n1\r\n72057594037931101 0 1 1 1 1 0 0.02764709 0.05745083 2\r\n25\r\n"
    "0.2181153 0.1725972 3.785547 277.419 191.8218 1036.233 519.1677 "
    "-0.2059419 0.05349901 0.9692109 -0.1239193 2\r\n"
    "0.2323292 0.4326636 3.714767 279.2439 165.8569 1041.918 444.3235 "
    "-0.2272637 0.05621852 0.964434 -0.1227094 2\r\n" + "0.1 0.2 3.5 250 200 1000 500 0 0 0 0 2\r\n" * 23
)


def _random_sequence(rng, t=20, b=2):
    joints = rng.normal(0.0, 0.5, size=(t, b, 25, 3)) + np.array([0.0, 0.0, 3.0])
    color = rng.uniform(0.0, 1919.0, size=(t, b, 25, 2))
    return joints, color


def _as_written(x: np.ndarray) -> np.ndarray:
    """What the text holds: 7 significant digits, read into float32."""
    return np.vectorize(lambda v: float(f"{v:.7g}"))(x).astype(np.float32)


def test_round_trip_exact_to_written_precision(tmp_path):
    rng = np.random.default_rng(0)
    joints, color = _random_sequence(rng)
    joints[3, 0, 4, 1] = 1.5e-5  # written in exponent form
    present = np.ones((20, 2), bool)
    present[5] = False  # a frame with no body
    present[10:, 1] = False  # the second body leaves
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_ntu_skeleton(path, joints, color, body_ids=[3165, 3166], present=present)

    raw = read_ntu_skeleton(path)
    assert raw.name == "S001C001P001R001A001" and raw.num_frames == 20
    assert [b.body_id for b in raw.bodies] == [str(BODY_ID_BASE + 3165), str(BODY_ID_BASE + 3166)]
    for k, body in enumerate(raw.bodies):
        frames = np.flatnonzero(present[:, k])
        np.testing.assert_array_equal(body.frames, frames)
        assert body.joints.dtype == np.float32 and body.color_xy.dtype == np.float32
        np.testing.assert_array_equal(body.joints, _as_written(joints[frames, k]))
        np.testing.assert_array_equal(body.color_xy, _as_written(color[frames, k]))


def test_writer_matches_the_real_files_format(tmp_path):
    joints = np.zeros((1, 1, 25, 3))
    color = np.zeros((1, 1, 25, 2))
    joints[0, 0, 0] = [0.2181153, 0.1725972, 3.785547]
    color[0, 0, 0] = [1036.233, 519.1677]
    joints[0, 0, 1] = [1.5e-5, -0.25, 3.0]
    path = tmp_path / "a.skeleton"
    write_ntu_skeleton(path, joints, color, body_ids=[72057594037931101])
    lines = path.read_bytes().split(b"\r\n")
    assert lines[:4] == [b"1", b"1", b"72057594037931101 0 1 1 1 1 0 0 0 2", b"25"]
    x, y, z, dx, dy, cx, cy, *orientation, state = lines[4].split()
    assert (x, y, z, cx, cy) == (b"0.2181153", b"0.1725972", b"3.785547", b"1036.233", b"519.1677")
    assert (float(dx), float(dy)) == pytest.approx((1036.233 * 512 / 1920, 519.1677 * 424 / 1080), rel=1e-6)
    assert orientation == [b"0"] * 4 and state == b"2"
    assert lines[5].split()[:3] == [b"1.5E-05", b"-0.25", b"3"]


def test_reads_a_real_file_excerpt_and_lf_endings(tmp_path):
    for ending in ("\r\n", "\n"):
        path = tmp_path / "S001C001P001R001A001.skeleton"
        path.write_bytes(REAL_EXCERPT.replace("\r\n", ending).encode())
        raw = read_ntu_skeleton(path)
        (body,) = raw.bodies
        assert body.body_id == "72057594037931101"
        np.testing.assert_array_equal(
            body.joints[0, :2], np.float32([[0.2181153, 0.1725972, 3.785547], [0.2323292, 0.4326636, 3.714767]])
        )
        np.testing.assert_array_equal(body.color_xy[0, 1], np.float32([1041.918, 444.3235]))


def test_nan_coordinates_are_kept_raw(tmp_path):
    joints, color = _random_sequence(np.random.default_rng(1), t=3, b=1)
    joints[1, 0, 7, 2] = np.nan
    path = tmp_path / "n.skeleton"
    write_ntu_skeleton(path, joints, color, body_ids=[1])
    assert b"NaN" in path.read_bytes()
    body = read_ntu_skeleton(path).bodies[0]
    assert np.isnan(body.joints[1, 7, 2]) and np.isnan(body.joints).sum() == 1


def test_file_of_frames_without_bodies(tmp_path):
    path = tmp_path / "e.skeleton"
    write_ntu_skeleton(path, np.zeros((4, 1, 25, 3)), np.zeros((4, 1, 25, 2)), [1], present=np.zeros((4, 1), bool))
    raw = read_ntu_skeleton(path)
    assert raw.num_frames == 4 and raw.bodies == []


# ---------------------------------------------------------------------------------------------
# Errors name the file and the line
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def good_file(tmp_path) -> Path:
    joints, color = _random_sequence(np.random.default_rng(2), t=3, b=1)
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write_ntu_skeleton(path, joints, color, body_ids=[1])
    return path  # line 1 frameCount; frame f: count 2+28f, info 3+28f, jointCount 4+28f, 25 joints


def _rewrite(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _error(path: Path) -> SkeletonFormatError:
    with pytest.raises(SkeletonFormatError) as info:
        read_ntu_skeleton(path)
    assert str(path) in str(info.value)
    return info.value


def test_truncated_file_names_the_line_where_it_ends(good_file):
    _rewrite(good_file, lambda lines: lines[:40])  # the second frame stops in its joints
    err = _error(good_file)
    assert err.line == 40 and "ends early" in err.problem and "line 40" in str(err)


def test_truncated_before_a_body_count(good_file):
    _rewrite(good_file, lambda lines: lines[:29])  # the first frame complete, then nothing
    err = _error(good_file)
    assert err.line == 29 and "body count of frame 1" in err.problem


def test_malformed_number_names_the_line(good_file):
    def edit(lines):
        fields = lines[36].split()
        fields[5] = "12.3.4"  # colorX of frame 1, joint 3
        lines[36] = " ".join(fields)
        return lines

    _rewrite(good_file, edit)
    err = _error(good_file)
    assert err.line == 37 and "'12.3.4'" in err.problem


def test_joint_line_with_too_few_values(good_file):
    def edit(lines):
        lines[10] = " ".join(lines[10].split()[:6])
        return lines

    _rewrite(good_file, edit)
    err = _error(good_file)
    assert err.line == 11 and "6 values" in err.problem


def test_wrong_joint_count(good_file):
    def edit(lines):  # frame 1 holds 24 joints
        lines[31] = "24"
        del lines[32]
        return lines

    _rewrite(good_file, edit)
    err = _error(good_file)
    assert err.line == 32 and "joint count 24" in err.problem


def test_non_integer_body_count(good_file):
    _rewrite(good_file, lambda lines: lines[:1] + ["x"] + lines[2:])
    err = _error(good_file)
    assert err.line == 2 and "'x'" in err.problem


def test_too_many_bodies_announced_is_caught_at_the_info_line(good_file):
    _rewrite(good_file, lambda lines: lines[:1] + ["2"] + lines[2:])
    err = _error(good_file)  # the second "body" starts on frame 1's count line
    assert err.line == 30 and "10-field body info line" in err.problem


def test_content_after_the_last_frame(good_file):
    _rewrite(good_file, lambda lines: ["2"] + lines[1:])
    err = _error(good_file)
    assert err.line == 58 and "after the last of 2 frames" in err.problem


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.skeleton"
    empty.write_bytes(b"\r\n")
    assert _error(empty).problem == "empty file"
    assert "cannot be read" in _error(tmp_path / "absent.skeleton").problem
