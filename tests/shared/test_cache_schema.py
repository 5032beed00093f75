import multiprocessing as mp
import os
import signal
import time

import h5py
import numpy as np
import pytest

from shared.cache_io import atomic_path, output_lock
from shared.cache_schema import (
    FeatureBlock,
    FeatureFile,
    FeatureHeader,
    SkeletonCache,
    SkeletonCacheWriter,
    merge_feature_parts,
    resolve_dataset_dir,
    resolve_features,
    write_feature_file,
)
from shared.errors import CacheError, LockedError
from shared.registry import DEMO, NW_UCLA

NAMES = ["S001C001P001R001A001", "S001C002P003R001A008", "S002C003P004R002A058"]


def write_cache(path, names=NAMES, spec=DEMO):
    rng = np.random.default_rng(0)
    frames = {}
    with SkeletonCacheWriter(path, spec, "/raw", {"k": 1}) as w:
        for i, name in enumerate(names):
            t = 4 + i
            joints = rng.normal(size=(t, spec.num_person, spec.layout.num_joints, 3)).astype(np.float32)
            color = rng.uniform(0, 1000, size=joints.shape[:-1] + (2,)).astype(np.float32)
            w.append(spec.parse_name(name), joints, np.arange(t, dtype=np.int32) * 2, color)
            frames[name] = (joints, color)
        w.add_failure("S001C001P002R001A009", "skeleton", "empty file")
    return frames


def test_skeleton_cache_round_trip(tmp_path):
    path = tmp_path / "demo" / "skeletons.h5"
    frames = write_cache(path)
    cache = SkeletonCache(tmp_path / "demo")
    assert cache.names == NAMES and cache.dataset == "demo" and len(cache) == 3
    assert cache.labels.tolist() == [DEMO.label_of_action(a) for a in (1, 8, 58)]
    assert cache.splits["xsub"].tolist() == [True, False, True]  # subjects 1, 3, 4
    assert cache.splits["xview"].tolist() == [False, True, True]  # cameras 1, 2, 3
    assert cache.meta["frame_count"].tolist() == [4, 5, 6]
    assert cache.color_resolution == (1920, 1080)
    assert cache.failures == [("S001C001P002R001A009", "skeleton", "empty file")]
    for loaded in (cache, SkeletonCache(path).load()):
        s = loaded.sample(2)
        np.testing.assert_array_equal(s["joints"], frames[NAMES[2]][0])
        np.testing.assert_array_equal(s["color_xy"], frames[NAMES[2]][1])
        assert s["frame_index"].tolist() == [0, 2, 4, 6, 8, 10]
    assert cache.split_indices("xview", train=False).tolist() == [0]
    with pytest.raises(CacheError, match="no protocol 'xset'"):
        cache.split_indices("xset", train=True)


def test_one_person_layout_without_colour(tmp_path):
    write_cache(tmp_path / "s.h5", ["a01_s01_e00_v01", "a12_s02_e01_v03"], NW_UCLA)
    cache = SkeletonCache(tmp_path / "s.h5")
    assert cache.joints_shape[1:] == (1, 20, 3) and not cache.has_color
    assert cache.splits["view3"].tolist() == [True, False]
    assert "color_xy" not in cache.sample(0)


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "skeletons.h5"
    write_cache(path)
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(CacheError, match="schema version 99"):
        SkeletonCache(path)


def test_truncated_or_partial_files_are_refused(tmp_path):
    path = tmp_path / "skeletons.h5"
    write_cache(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CacheError, match="not a readable HDF5 file"):
        SkeletonCache(path)
    write_cache(path)
    with h5py.File(path, "a") as f:
        del f["samples/label"]
    with pytest.raises(CacheError, match="incomplete skeleton cache"):
        SkeletonCache(path)


def test_failed_writer_leaves_no_file(tmp_path):
    path = tmp_path / "skeletons.h5"
    with pytest.raises(RuntimeError):
        with SkeletonCacheWriter(path, DEMO) as w:
            w.append(DEMO.parse_name(NAMES[0]), np.zeros((3, 2, 25, 3), np.float32), np.arange(3))
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def _hold_lock(path, ready):
    with output_lock(path):
        ready.set()
        time.sleep(60)


def test_second_writer_is_refused_and_a_killed_holder_frees_the_lock(tmp_path):
    out = tmp_path / "skeletons.h5"
    ready = mp.Event()
    holder = mp.Process(target=_hold_lock, args=(out, ready))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(LockedError, match=f"pid {holder.pid}"):
        with output_lock(out):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    with output_lock(out):  # the kernel dropped the dead process's lock: no stale lock
        pass


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(ValueError):
        with atomic_path(target) as tmp:
            tmp.write_text("new, half written")
            raise ValueError
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def feature_block(n, names, k=2, d=4, q=3, dt=5):
    rng = np.random.default_rng(1)
    yes = rng.uniform(size=(n, q)).astype(np.float32)
    yes[0, 1] = np.nan
    return FeatureBlock(
        index=np.arange(n),
        name=list(names),
        rgb_valid=np.array([True] * (n - 1) + [False]),
        rgb_pooled=rng.normal(size=(n, d)),
        rgb_frames=rng.normal(size=(n, k, d)),
        text_valid=np.ones(n, bool),
        yes_prob=yes,
        description=[f"person {i}" for i in range(n)],
        text_embedding=rng.normal(size=(n, dt)),
        failures=[(names[-1], "video", "missing")],
    )


def header(cache, q=3, dt=5):
    return FeatureHeader(
        cache.names_hash,
        len(cache),
        [f"q{i}?" for i in range(q)],
        ["a", "b"],
        np.ones((2, dt)),
        {"mllm": "tiny", "frames": 2},
    )


def test_feature_parts_merge_into_the_uninterrupted_result(tmp_path):
    write_cache(tmp_path / "demo" / "skeletons.h5")
    cache = SkeletonCache(tmp_path / "demo")
    block, head = feature_block(3, cache.names), header(cache)
    feats = tmp_path / "demo" / "features"
    write_feature_file(feats / "whole.h5", head, block, complete=True)
    parts = [feats / "p1.h5", feats / "p0.h5"]
    write_feature_file(parts[0], head, block.take(np.array([2])), complete=False)
    write_feature_file(parts[1], head, block.take(np.array([0, 1])), complete=False)
    with pytest.raises(CacheError, match="partial feature file"):
        FeatureFile(parts[0])
    merge_feature_parts(parts, feats / "merged.h5")
    for p in parts:
        p.unlink()
    a, b = FeatureFile(feats / "whole.h5", cache), FeatureFile(feats / "merged.h5", cache)
    assert a.block.name == b.block.name == cache.names
    np.testing.assert_array_equal(a.block.rgb_valid, b.block.rgb_valid)
    np.testing.assert_allclose(a.block.rgb_frames, b.block.rgb_frames)
    np.testing.assert_array_equal(a.text_input, b.text_input)
    assert a.text_input.shape == (3, 3 + 5) and a.text_input[0, 1] == 0.5  # NaN -> 0.5
    assert a.header.attrs == b.header.attrs and a.block.failures == b.block.failures


def test_incomplete_merge_and_mismatched_sets_are_refused(tmp_path):
    write_cache(tmp_path / "demo" / "skeletons.h5")
    cache = SkeletonCache(tmp_path / "demo")
    block, head = feature_block(3, cache.names), header(cache)
    part = tmp_path / "p0.h5"
    write_feature_file(part, head, block.take(np.array([0])), complete=False)
    with pytest.raises(CacheError, match="cover 1 of 3"):
        merge_feature_parts([part], tmp_path / "out.h5")
    merged = merge_feature_parts([part], tmp_path / "out.h5", allow_missing=True)
    assert merged.rgb_valid.tolist() == [True, False, False] and np.isnan(merged.yes_prob[2]).all()
    other = tmp_path / "p1.h5"
    other_head = FeatureHeader(
        head.names_hash, 3, head.questions, head.class_names, head.class_embedding, {"mllm": "other"}
    )
    write_feature_file(other, other_head, block.take(np.array([1, 2])), complete=False)
    with pytest.raises(CacheError, match="not part of the same feature set"):
        merge_feature_parts([part, other], tmp_path / "out2.h5")


def test_features_for_another_sample_list_are_refused(tmp_path):
    write_cache(tmp_path / "demo" / "skeletons.h5")
    write_cache(tmp_path / "other" / "skeletons.h5", NAMES[:2])
    cache, other = SkeletonCache(tmp_path / "demo"), SkeletonCache(tmp_path / "other")
    path = tmp_path / "f.h5"
    write_feature_file(path, header(other), feature_block(2, other.names), complete=True)
    with pytest.raises(CacheError, match="different sample list"):
        FeatureFile(path, cache)


def test_resolving_cache_and_feature_paths(tmp_path):
    with pytest.raises(CacheError, match="no skeleton cache under"):
        resolve_dataset_dir(tmp_path)
    write_cache(tmp_path / "demo" / "skeletons.h5")
    assert resolve_dataset_dir(tmp_path) == tmp_path / "demo"
    assert resolve_dataset_dir(tmp_path / "demo") == tmp_path / "demo"
    write_cache(tmp_path / "ntu60" / "skeletons.h5")
    with pytest.raises(CacheError, match=r"several datasets \(demo, ntu60\).*--cache") as e:
        resolve_dataset_dir(tmp_path)
    # every command reading a cache has --cache; `mmcl train` has no --dataset, so none is suggested
    assert f"--cache {tmp_path / 'ntu60'}" in str(e.value) and "--dataset" not in str(e.value)
    assert resolve_dataset_dir(tmp_path, "ntu60") == tmp_path / "ntu60"
    with pytest.raises(CacheError, match="no feature file.*--no-fam --no-frm"):
        resolve_features(tmp_path / "demo", None)
    cache = SkeletonCache(tmp_path / "demo")
    for name in ("a", "b"):
        write_feature_file(
            tmp_path / "demo" / "features" / f"{name}.h5", header(cache), feature_block(3, cache.names), complete=True
        )
    with pytest.raises(CacheError, match="several feature sets.*a, b.*--features"):
        resolve_features(tmp_path / "demo", None)
    assert resolve_features(tmp_path / "demo", "b").name == "b.h5"
    with pytest.raises(CacheError, match="no feature set 'c'"):
        resolve_features(tmp_path / "demo", "c")


def flip_a_bit_in_chunk(path, dataset: str, chunk: int = 0) -> None:
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte ^ 0x10]))


def test_a_bit_flipped_frame_chunk_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "demo" / "skeletons.h5"
    write_cache(path)
    flip_a_bit_in_chunk(path, "skeleton/joints")
    cache = SkeletonCache(path)  # the sample table is intact
    with pytest.raises(CacheError, match=r"skeletons.h5: damaged, its frames cannot be read .*rebuild it"):
        cache.sample(0)
    with pytest.raises(CacheError, match=r"skeletons.h5: damaged, its frames cannot be read"):
        SkeletonCache(path).load()
