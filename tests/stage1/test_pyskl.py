"""pyskl interop: a pickle in pyskl's documented layout (tools/data/README.md, ntu_preproc.py:
float16 keypoint (M, T, V, C), M = 1 for one actor, splits <protocol>_train / <protocol>_val)
imports as a skeleton cache, and a cache exports to the same layout and back."""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError
from shared.registry import NTU60
from stage2_run import invoke

# (name, persons, frames): subjects 1, 2 train under xsub and 3 tests; camera 1 tests under xview
SAMPLES = [
    ("S001C001P001R001A001", 1, 12),
    ("S001C002P003R001A050", 2, 7),
    ("S002C003P002R002A013", 1, 20),
    ("S003C001P003R001A060", 2, 5),
]
TRAIN_SUBJECTS, TRAIN_CAMERAS = {1, 2}, {2, 3}


def pyskl_data(samples=SAMPLES, seed: int = 0) -> dict:
    """A pickle's content as pyskl's ntu_preproc.py writes it."""
    rng = np.random.default_rng(seed)
    annotations = []
    for name, m, t in samples:
        keypoint = (rng.normal(0, 0.5, (m, t, 25, 3)) + [0, 0, 3]).astype(np.float16)
        annotations.append(dict(frame_dir=name, label=int(name.split("A")[-1]) - 1, keypoint=keypoint, total_frames=t))
    names = [s[0] for s in samples]
    subject = {n: int(n.split("P")[1][:3]) for n in names}
    camera = {n: int(n.split("C")[1][:3]) for n in names}
    split = dict(
        xsub_train=[n for n in names if subject[n] in TRAIN_SUBJECTS],
        xsub_val=[n for n in names if subject[n] not in TRAIN_SUBJECTS],
        xview_train=[n for n in names if camera[n] in TRAIN_CAMERAS],
        xview_val=[n for n in names if camera[n] not in TRAIN_CAMERAS],
    )
    return dict(split=split, annotations=annotations)


def write(path: Path, data) -> Path:
    path.write_bytes(pickle.dumps(data))
    return path


def import_cache(pkl: Path, out: Path, ok: bool = True):
    return invoke(
        "extract", "--dataset", "ntu60", "--import-pyskl", pkl, "--out", out, "--skeletons-only", "--quiet", ok=ok
    )


def test_pyskl_pickle_imports_as_a_cache(tmp_path):
    data = pyskl_data()
    import_cache(write(tmp_path / "ntu60_3danno.pkl", data), tmp_path / "cache")
    cache = SkeletonCache(tmp_path / "cache" / "ntu60")
    assert cache.names == [s[0] for s in SAMPLES]
    assert list(cache.labels) == [NTU60.label_of_action(int(n.split("A")[-1])) for n, _, _ in SAMPLES]
    for i, ann in enumerate(data["annotations"]):
        joints = cache.sample(i)["joints"]
        m, t = ann["keypoint"].shape[:2]
        assert joints.shape == (t, 2, 25, 3)
        np.testing.assert_array_equal(joints[:, :m], ann["keypoint"].transpose(1, 0, 2, 3).astype(np.float32))
        assert not joints[:, m:].any()  # a second actor absent in pyskl is zero padding here
    for protocol in ("xsub", "xview"):
        train = [n for n, t in zip(cache.names, cache.splits[protocol]) if t]
        assert train == data["split"][f"{protocol}_train"]


def test_round_trip_cache_to_pyskl_and_back(tmp_path):
    data = pyskl_data()
    import_cache(write(tmp_path / "in.pkl", data), tmp_path / "a")
    invoke("export-pyskl", "--cache", tmp_path / "a", "--out", tmp_path / "out.pkl", "--quiet")
    exported = pickle.loads((tmp_path / "out.pkl").read_bytes())
    assert exported["split"] == data["split"]
    assert len(exported["annotations"]) == len(data["annotations"])
    for mine, theirs in zip(exported["annotations"], data["annotations"]):
        assert set(mine) == {"frame_dir", "label", "keypoint", "total_frames"}
        assert (mine["frame_dir"], mine["label"], mine["total_frames"]) == (
            theirs["frame_dir"],
            theirs["label"],
            theirs["total_frames"],
        )
        assert mine["keypoint"].shape == theirs["keypoint"].shape  # the absent actor dropped again
        np.testing.assert_array_equal(mine["keypoint"], theirs["keypoint"].astype(np.float32))
    import_cache(tmp_path / "out.pkl", tmp_path / "b")
    a, b = SkeletonCache(tmp_path / "a" / "ntu60").load(), SkeletonCache(tmp_path / "b" / "ntu60").load()
    assert a.names == b.names and a.splits.keys() == b.splits.keys()
    np.testing.assert_array_equal(a.labels, b.labels)
    for i in range(len(a)):
        np.testing.assert_array_equal(a.sample(i)["joints"], b.sample(i)["joints"])


def test_a_broken_sample_is_recorded_and_skipped(tmp_path):
    data = pyskl_data()
    data["annotations"][1]["keypoint"] = data["annotations"][1]["keypoint"][:, :, :17]  # 17 joints
    data["annotations"][2]["keypoint"][0, 3, 4, 1] = np.inf
    data["annotations"].append(None)  # ntu_preproc.py keeps None for a file without bodies
    import_cache(write(tmp_path / "x.pkl", data), tmp_path / "cache")
    cache = SkeletonCache(tmp_path / "cache" / "ntu60")
    assert cache.names == [SAMPLES[0][0], SAMPLES[3][0]]
    reasons = {name: reason for name, _, reason in cache.failures}
    assert "17 joints, expected 25" in reasons[SAMPLES[1][0]]
    assert "not finite" in reasons[SAMPLES[2][0]] and "#4" in reasons


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda d: d["annotations"][0].update(label=7), "has label 7, but its action 1 is class 0 of ntu60"),
        (lambda d: d["annotations"][0].update(keypoint=np.zeros((1, 12, 25, 2), np.float16)), "2D keypoints"),
        (lambda d: d["split"]["xsub_val"].append(SAMPLES[0][0]), "split 'xsub_val' lists S001C001P001R001A001"),
        (lambda d: d["annotations"][0].update(frame_dir="video_0001"), "'video_0001' .* is not a ntu60 sample name"),
        (
            lambda d: d["annotations"][0].update(frame_dir="../S001C001P001R001A001"),
            "frame_dir: sample name .* is refused",
        ),
    ],
)
def test_a_file_that_is_not_this_datasets_is_one_clear_error(tmp_path, spoil, message):
    data = pyskl_data()
    spoil(data)
    result = import_cache(write(tmp_path / "bad.pkl", data), tmp_path / "cache", ok=False)
    assert isinstance(result.exception, MMCLError)
    assert str(tmp_path / "bad.pkl") in str(result.exception)
    assert re.search(message, str(result.exception)), str(result.exception)
    assert not (tmp_path / "cache" / "ntu60" / "skeletons.h5").exists()


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = import_cache(
        write(tmp_path / "evil.pkl", dict(split={}, annotations=[_Payload()])), tmp_path / "cache", ok=False
    )
    assert isinstance(result.exception, MMCLError) and "refusing" in str(result.exception)
    assert not (tmp_path / "pwned").exists()
