"""#21 item 4: bit rot in a cache is one line naming the file (and the dataset), in every command.

The small tables of skeletons.h5 (labels, splits, the sample table) and every feature-file dataset
carry a stored SHA-256; the frames carry HDF5's per-chunk fletcher32. Reproductions from the issue:
a flipped bit in `samples/label` or `samples/is_train/<protocol>` trained on the wrong label or split,
a label of 2**32 was an IndexError, and a damaged joints chunk was an OSError traceback in train,
test and zeroshot."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from stage2_run import invoke

from shared.cache_schema import FeatureFile, SkeletonCache
from shared.errors import CacheError


def rewrite_values(path: Path, dataset: str, change) -> None:
    """Change a dataset's values in place, as a flipped bit on disk would: attributes untouched."""
    with h5py.File(path, "r+") as f:
        values = f[dataset][()]
        f[dataset][...] = change(values)


def flip_a_bit_in_chunk(path: Path, dataset: str, chunk: int = 0) -> None:
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)[0]
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte ^ 0x10]))


def flip_first(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values[0] = values[0] ^ (True if values.dtype == bool else 1)
    return values


@pytest.fixture
def clean(feature_cache) -> Path:
    """The shared tiny cache with its feature set (read only: `damaged` copies it)."""
    return feature_cache


@pytest.fixture
def damaged(clean, tmp_path):
    """A fresh copy of the tiny cache to damage; returns its dataset directory."""
    folder = tmp_path / "cache" / clean.name
    shutil.copytree(clean, folder)
    return folder


@pytest.mark.parametrize(
    "dataset, change",
    [
        ("samples/label", flip_first),
        ("samples/is_train/xsub", flip_first),
        ("samples/subject", flip_first),
        ("samples/frame_count", flip_first),
        ("skeleton/offsets", lambda v: v + np.arange(len(v)) % 2),
    ],
)
def test_a_flipped_bit_in_the_sample_table_is_refused(damaged, dataset, change):
    rewrite_values(damaged / "skeletons.h5", dataset, change)
    with pytest.raises(CacheError) as e:
        SkeletonCache(damaged)
    assert str(e.value).startswith(f"{damaged / 'skeletons.h5'}: damaged, dataset /{dataset} ")


def test_a_label_out_of_the_class_range_is_refused_even_without_a_checksum(damaged):
    path = damaged / "skeletons.h5"
    with h5py.File(path, "r+") as f:  # a file whose checksum was lost: the range check still holds
        del f["samples/label"].attrs["sha256"]
    rewrite_values(path, "samples/label", lambda v: np.where(np.arange(len(v)) == 0, 2**32, v))
    with pytest.raises(CacheError, match=r"skeletons.h5: sample S\w+ has label 4294967296, outside 0..\d+"):
        SkeletonCache(damaged)


@pytest.mark.parametrize("dataset", ["rgb/valid", "text/valid", "samples/index", "rgb/pooled"])
def test_a_flipped_bit_in_a_feature_file_is_refused(damaged, dataset):
    path = damaged / "features" / "tiny.h5"
    rewrite_values(path, dataset, lambda v: flip_first(v) if v.dtype != np.float16 else -v)
    with pytest.raises(CacheError, match=f"tiny.h5: damaged, dataset /{dataset} does not match its checksum"):
        FeatureFile(path)


@pytest.fixture
def run_dir(joint_run) -> Path:
    """The shared skeleton-only run, trained on the same skeletons as `clean` (the same seed)."""
    return joint_run


@pytest.mark.parametrize("command", ["train", "test", "zeroshot"])
def test_a_damaged_frame_chunk_is_one_line_in_every_command(damaged, run_dir, tmp_path, command):
    flip_a_bit_in_chunk(damaged / "skeletons.h5", "skeleton/joints")
    args = {
        "train": [
            "train",
            "--cache",
            damaged,
            "--epochs",
            1,
            "--recipe",
            "demo",
            "--device",
            "cpu",
            "--workers",
            0,
            "--no-fam",
            "--no-frm",
            "--work-dir",
            tmp_path / "w",
        ],
        "test": ["test", "--checkpoint", run_dir / "last.pt", "--cache", damaged, "--out", tmp_path / "t"],
        "zeroshot": [
            "zeroshot",
            "--checkpoint",
            run_dir,
            "--cache",
            damaged,
            "--out",
            tmp_path / "z",
            "--protocol",
            "xsub",
        ],
    }
    result = invoke(*args[command], ok=False)
    assert isinstance(result.exception, CacheError), repr(result.exception)
    assert str(result.exception).startswith(f"{damaged / 'skeletons.h5'}: damaged")
