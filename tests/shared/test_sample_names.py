"""Sample names are one plain file-name component; paths built from them stay in their folder."""

from __future__ import annotations

import pytest

from shared.errors import MMCLError
from shared.registry import get_dataset
from shared.sample_names import check_sample_name, file_inside, name_problem


@pytest.mark.parametrize("name", ["S001C001P001R001A001", "a01_s01_e01_v01", "clip 1 (take 2)", "wave.v2"])
def test_plain_names_pass(name):
    assert name_problem(name) is None and check_sample_name(name, "x") == name


@pytest.mark.parametrize(
    "name, problem",
    [
        ("", "empty"),
        ("../x", "separator"),
        ("a/b", "separator"),
        ("a\\b", "separator"),
        ("..", "'..'"),
        ("x..y", "'..'"),
        ("a\nb", "control"),
        ("a\x00b", "control"),
        ("a\x7fb", "control"),
    ],
)
def test_names_that_could_leave_a_folder_are_refused(name, problem):
    assert problem in name_problem(name)
    with pytest.raises(MMCLError, match=f"samples.csv: sample name .* is refused: .*{problem}"):
        check_sample_name(name, "samples.csv")


def test_no_dataset_parses_an_unsafe_name():
    """Custom datasets accept any name (regex .+); the registry still refuses unsafe ones."""
    spec = get_dataset("ntu60")
    assert spec.parse_name("S001C001P001R001A001") is not None
    custom = spec.__class__(**{**spec.__dict__, "name_regex": r".+", "setups": None})
    assert custom.parse_name("../../S001C001P001R001A001") is None


def test_file_inside_keeps_paths_in_their_folder(tmp_path):
    assert file_inside(tmp_path, "a.jpg") == tmp_path / "a.jpg"
    for name in ("../a.jpg", "sub/a.jpg", "/etc/a.jpg"):
        with pytest.raises(MMCLError, match="refusing to write outside"):
            file_inside(tmp_path, name)
