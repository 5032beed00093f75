"""#21 item 7: input identity in the resume key. A sample's features are extracted again when its video
changed (another file at its path, a manifest pointing elsewhere, another --root), recorded failures
with --retry-failed; everything else is kept. Before: "N done before, 0 now" with the old features."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from stage1_demo import CORRUPT, MISSING, config, new_cache

from shared.cache_schema import read_feature_file
from stage1_extract.extract import extract_features


@pytest.fixture
def root(demo_root, tmp_path) -> Path:
    """A copy of the demo dataset this test may edit."""
    copy = tmp_path / "data" / "demo"
    shutil.copytree(demo_root, copy)
    return copy


def video(root: Path, name: str) -> Path:
    return root / "nturgb+d_rgb" / f"{name}_rgb.avi"


def test_a_changed_or_new_video_is_extracted_again_and_the_rest_kept(root, demo_models, models, skeleton_file,
                                                                       tmp_path):
    out = new_cache(tmp_path, skeleton_file)
    first = extract_features(config(out, root, demo_models), models)
    before = read_feature_file(first.output)[1]
    names = before.name
    changed = next(n for n in names if n not in (CORRUPT, MISSING) and before.rgb_valid[names.index(n)])
    donor = next(n for n in names if n not in (CORRUPT, MISSING, changed)
                 and before.rgb_valid[names.index(n)] and n[-4:] != changed[-4:])  # another action's clip
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
