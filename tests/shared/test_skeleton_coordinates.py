"""check_coordinates: every reader rejects NaN, infinite and absurd coordinates, naming the file, frame
and joint (one such value made a whole training run NaN); finite data passes untouched."""

from __future__ import annotations

import re

import numpy as np
import pytest

from shared.errors import CoordinateError, SkeletonFormatError
from shared.ntu_skeleton import write_ntu_skeleton
from shared.readers import read_sample
from shared.skeleton_sample import MAX_ABS_METRES, check_coordinates


def joints(t=6):
    rng = np.random.default_rng(0)
    return (rng.normal(0, 0.4, size=(t, 2, 25, 3)) + [0, 0, 3]).astype(np.float32)


@pytest.mark.parametrize(
    "value, words",
    [
        (np.inf, "x = inf is not finite"),
        (-np.inf, "x = -inf is not finite"),
        (np.nan, "x = nan is not finite"),
        (1e30, "x = 1e+30 is beyond 100 m: not a physical position"),
    ],
)
def test_bad_coordinate_names_source_frame_person_and_joint(value, words):
    j = joints()
    j[4, 1, 7, 0] = value
    expected = f"clip.skeleton: frame 13 (from 0), person 1, joint 7: {words} (1 frame(s)"
    with pytest.raises(CoordinateError, match=re.escape(expected)):
        check_coordinates(j, "clip.skeleton", frame_index=np.arange(6) + 9)


def test_finite_plausible_data_and_absent_actors_pass():
    j = joints()
    j[:, 1] = 0  # a lone actor: the second slot is zeros
    j[0, 0, 0] = [MAX_ABS_METRES, -MAX_ABS_METRES, 0]  # the bound itself is allowed
    check_coordinates(j, "clip.skeleton")
    assert issubclass(CoordinateError, SkeletonFormatError)


@pytest.mark.parametrize("token", ["Infinity", "1E+30", "-Infinity"])
def test_ntu_reader_records_a_file_with_one_absurd_coordinate(tmp_path, token):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    j = joints(20)[:, :1]
    write_ntu_skeleton(path, j, np.full((20, 1, 25, 2), 500.0), [1])
    lines = path.read_bytes().decode().split("\r\n")
    # frame 12 (from 0): 2 header lines, then per frame: body count, body info, joint count, 25 joints
    joint_line = 1 + 12 * 28 + 3 + 5
    fields = lines[joint_line].split(" ")
    lines[joint_line] = " ".join([token] + fields[1:])
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(CoordinateError, match=rf"{path.name}: frame 12 \(from 0\), person 0, joint 5: x = "):
        read_sample("demo", path)


def test_ntu_reader_keeps_finite_files_as_cleaned(tmp_path):
    path = tmp_path / "S001C001P001R001A001.skeleton"
    j = joints(20)[:, :1]
    write_ntu_skeleton(path, j, np.full((20, 1, 25, 2), 500.0), [1])
    sample = read_sample("demo", path)
    assert sample.joints.shape == (20, 2, 25, 3) and np.isfinite(sample.joints).all()
