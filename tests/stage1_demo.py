"""Stage 1's test demo: a small generated dataset with broken samples, the tiny demo models, and how
the tests run an extraction on it (in process or as the command line) and compare feature files.
The fixtures that build them live in tests/stage1/conftest.py."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

from shared.cache_schema import SKELETON_FILE, read_feature_file
from stage1_extract.extract import ExtractConfig
from stage1_extract.model_specs import ModelSpecs
from stage1_extract.temporal_image import TemporalImageConfig

SUBJECTS, ACTIONS = (1, 2), (1, 23, 58)  # 6 samples; A058 is a two-person action
MISSING = "S002C001P002R001A023"  # video deleted
CORRUPT = "S002C001P002R001A058"  # video truncated
SHORT = "S001C001P001R001A023"  # video of 3 frames, fewer than K
BROKEN = {MISSING: "no such video", CORRUPT: "cannot", SHORT: "fewer than the 5"}
IMAGE = TemporalImageConfig(frames=5, size=(280, 112))  # small: the tiny MLLM runs on 2 CPU cores
OPTIONS = dict(batch_size=2, chunk_size=2, workers=1)
# Runs compared within 1e-6 must use the same number of threads (float sums in another order):
# one, as conftest's one_torch_thread sets for the in-process runs.
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def new_cache(tmp_path: Path, skeleton_file: Path) -> Path:
    """A cache root holding a copy of the session's skeleton file (built once, reused)."""
    out = tmp_path / "cache"
    (out / "demo").mkdir(parents=True)
    shutil.copy(skeleton_file, out / "demo" / SKELETON_FILE)
    return out


def specs(demo_models) -> ModelSpecs:
    # the default RGB and text encoders resolve to the packaged offline weights
    return ModelSpecs(mllm=str(demo_models["mllm"]), backend="transformers", device="cpu")


def config(out: Path, demo_root: Path, demo_models, **kw) -> ExtractConfig:
    """In-process runs decode in the main process (workers=0); the command-line runs use a worker."""
    return ExtractConfig(
        **{
            "dataset": "demo",
            "root": demo_root,
            "out": out,
            "models": specs(demo_models),
            "image": IMAGE,
            "progress": False,
            **{**OPTIONS, "workers": 0},
            **kw,
        }
    )


def demo_model_args(demo_models) -> list[str]:
    """`mmcl extract`'s flags for the offline demo MLLM, on CPU, at the tests' small image size."""
    width, height = IMAGE.size
    return [
        "--mllm",
        str(demo_models["mllm"]),
        *f"--backend transformers --device cpu --image-size {width}x{height}".split(),
    ]


def cli_args(out: Path, demo_root: Path, demo_models) -> list[str]:
    """The command line equivalent of `config(out, ...)`."""
    return [
        "--dataset",
        "demo",
        "--root",
        str(demo_root),
        "--out",
        str(out),
        *demo_model_args(demo_models),
        "--batch-size",
        str(OPTIONS["batch_size"]),
        "--chunk-size",
        str(OPTIONS["chunk_size"]),
        "--workers",
        str(OPTIONS["workers"]),
        "--quiet",
    ]


def cli_command(out: Path, demo_root: Path, demo_models, *extra: str) -> list[str]:
    return [sys.executable, "-m", "stage1_extract.cli", *cli_args(out, demo_root, demo_models), *extra]


def assert_same_features(a: Path, b: Path, atol: float = 1e-6) -> None:
    """Same sample names and valid masks, arrays equal within atol, attributes equal except times."""
    (ha, ba), (hb, bb) = read_feature_file(a), read_feature_file(b)
    assert ba.name == bb.name
    np.testing.assert_array_equal(ba.rgb_valid, bb.rgb_valid)
    np.testing.assert_array_equal(ba.text_valid, bb.text_valid)
    for key in ("rgb_pooled", "rgb_frames", "yes_prob", "text_embedding"):
        np.testing.assert_allclose(
            getattr(ba, key).astype(np.float32), getattr(bb, key).astype(np.float32), rtol=0, atol=atol, err_msg=key
        )
    np.testing.assert_allclose(
        ha.class_embedding.astype(np.float32), hb.class_embedding.astype(np.float32), rtol=0, atol=atol
    )
    if atol <= 1e-6:
        assert ba.description == bb.description
    assert sorted(ba.failures) == sorted(bb.failures)
    assert (ha.questions, ha.class_names) == (hb.questions, hb.class_names)
    with h5py.File(a) as fa, h5py.File(b) as fb:
        attrs = [{k: str(v) for k, v in f.attrs.items() if k != "created"} for f in (fa, fb)]
    assert attrs[0] == attrs[1]
