"""#21 item 7: input identity in the resume key. A sample's features are extracted again when its video
changed (another file at its path, a manifest pointing elsewhere, another --root) or its raw skeleton
file changed (the skeleton cache is then built again), recorded failures with --retry-failed;
everything else is kept, and so are files written before stamps. Before: "N done before, 0 now"
with the old features (and the old skeletons: the cache was "up to date")."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from stage1_demo import BROKEN, CORRUPT, MISSING, config, new_cache

from shared.cache_schema import SKELETON_FILE, SkeletonCache, read_feature_file, write_feature_file
from stage1_extract.extract import extract_features


@pytest.fixture
def root(demo_root, tmp_path) -> Path:
    """A copy of the demo dataset this test may edit."""
    copy = tmp_path / "data" / "demo"
    shutil.copytree(demo_root, copy)
    return copy


def video(root: Path, name: str) -> Path:
    return root / "nturgb+d_rgb" / f"{name}_rgb.avi"


def test_a_changed_or_new_video_is_extracted_again_and_the_rest_kept(
    root, demo_models, models, skeleton_file, tmp_path
):
    out = new_cache(tmp_path, skeleton_file)
    first = extract_features(config(out, root, demo_models), models)
    before = read_feature_file(first.output)[1]
    names = before.name
    changed = next(n for n in names if n not in (CORRUPT, MISSING) and before.rgb_valid[names.index(n)])
    donor = next(
        n
        for n in names
        if n not in (CORRUPT, MISSING, changed) and before.rgb_valid[names.index(n)] and n[-4:] != changed[-4:]
    )  # another action's clip
    shutil.copy(video(root, donor), video(root, changed))
    shutil.copy(video(root, donor), video(root, MISSING))  # a video that was missing is there now

    again = extract_features(config(out, root, demo_models), models)
    after = read_feature_file(again.output)[1]
    assert again.processed == 2 and again.skipped == len(names) - 2
    i, m = names.index(changed), names.index(MISSING)
    assert np.abs(after.rgb_pooled[i].astype(float) - before.rgb_pooled[i]).max() > 0.1  # the donor's clip now
    assert after.rgb_valid[m] and not before.rgb_valid[m]
    kept = [k for k in range(len(names)) if k not in (i, m)]
    np.testing.assert_array_equal(after.rgb_pooled[kept], before.rgb_pooled[kept])
    assert extract_features(config(out, root, demo_models), models).processed == 0  # now up to date


def test_retry_failed_extracts_the_recorded_failures_again(root, demo_models, models, skeleton_file, tmp_path):
    out = new_cache(tmp_path, skeleton_file)
    first = extract_features(config(out, root, demo_models), models)
    failed = {name for name, _, _ in read_feature_file(first.output)[1].failures}
    assert {CORRUPT, MISSING} <= failed
    assert extract_features(config(out, root, demo_models), models).processed == 0  # kept by default
    retried = extract_features(config(out, root, demo_models, retry_failed=True), models)
    assert retried.processed == len(failed) and retried.exit_code == 1  # still broken: recorded again


def test_another_root_extracts_everything_again(root, demo_models, models, skeleton_file, tmp_path):
    out = new_cache(tmp_path, skeleton_file)
    first = extract_features(config(out, root, demo_models), models)
    moved = tmp_path / "elsewhere" / "demo"
    shutil.copytree(root, moved)
    again = extract_features(config(out, moved, demo_models), models)
    assert again.skipped == 0 and again.processed == first.total


def skeleton(root: Path, name: str) -> Path:
    return root / "nturgb+d_skeletons" / f"{name}.skeleton"


def move_joints(path: Path, dx: float = 0.2, dcolor: float = 60) -> None:
    """Edit an NTU .skeleton file: every joint moved (x by `dx` metres, colour x by `dcolor` pixels)."""
    lines = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 12:  # a joint: x y z depthX depthY colorX colorY orientation (4) tracking state
            fields[0], fields[5] = f"{float(fields[0]) + dx:.7g}", f"{float(fields[5]) + dcolor:.7g}"
        lines.append(" ".join(fields))
    path.write_text("\n".join(lines) + "\n")


def test_a_changed_skeleton_file_rebuilds_the_skeletons_and_extracts_that_sample_again(
    root, demo_models, models, skeleton_file, tmp_path, capsys
):
    out = new_cache(tmp_path, skeleton_file)
    first = extract_features(config(out, root, demo_models), models)
    before = read_feature_file(first.output)[1]
    names = before.name
    changed = next(n for n in names if n not in BROKEN and before.rgb_valid[names.index(n)])
    old = SkeletonCache(out / "demo" / SKELETON_FILE)
    joints_before = old.sample(old.names.index(changed))["joints"]
    move_joints(skeleton(root, changed))
    capsys.readouterr()

    again = extract_features(config(out, root, demo_models), models)
    assert f"1 skeleton files changed since it was built (first: {skeleton(root, changed)})" in capsys.readouterr().out
    assert again.processed == 1 and again.skipped == len(names) - 1
    new = SkeletonCache(out / "demo" / SKELETON_FILE)
    moved = new.sample(new.names.index(changed))["joints"] - joints_before
    np.testing.assert_allclose(moved[..., 0][joints_before[..., 0] != 0], 0.2, atol=1e-5)  # the edited file's
    after = read_feature_file(again.output)[1]
    i = names.index(changed)
    assert np.abs(after.rgb_pooled[i].astype(float) - before.rgb_pooled[i]).max() > 0  # the crop moved with it
    kept = [k for k in range(len(names)) if k != i]
    np.testing.assert_array_equal(after.rgb_pooled[kept], before.rgb_pooled[kept])
    assert extract_features(config(out, root, demo_models), models).processed == 0  # now up to date
    assert "is up to date" in capsys.readouterr().out


def test_caches_written_before_skeleton_files_were_stamped_are_kept(
    root, demo_models, models, skeleton_file, tmp_path, capsys
):
    out = new_cache(tmp_path, skeleton_file)
    first = extract_features(config(out, root, demo_models), models)
    # as files written before: no source stamps in skeletons.h5, video stamps alone in the features
    with h5py.File(out / "demo" / SKELETON_FILE, "a") as f:
        del f["samples/source_stamp"], f.attrs["sources_digest"]
    header, block = read_feature_file(first.output)
    assert all("+" in s for s in block.input_stamp)  # video + skeleton source
    block.input_stamp = [s.partition("+")[0] for s in block.input_stamp]
    write_feature_file(first.output, header, block, complete=True)
    move_joints(skeleton(root, block.name[0]))
    capsys.readouterr()

    again = extract_features(config(out, root, demo_models), models)
    assert again.processed == 0 and "is up to date" in capsys.readouterr().out  # treated as today
    assert SkeletonCache(out / "demo" / SKELETON_FILE).source_stamps == [""] * len(block.name)
