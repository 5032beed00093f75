"""Fixtures shared by several test files, each built once a session.

They are read-only for the tests that use them: a test that writes into one copies it first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from stage2_cache import write_tiny_cache
from stage2_run import ONE_EPOCH, SKELETON_ONLY, train


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and on a shared 2-core CPU spinning OpenMP threads
    cost ~10x. One thread also sums floats in the same order as the command-line runs started
    with OMP_NUM_THREADS=1, so in-process and subprocess results compare within 1e-6."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- stage 1


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory) -> dict[str, Path]:
    """The offline demo models by role (random tiny Qwen2.5-VL, packaged RGB and text encoders)."""
    from stage1_extract.demo.models import build_demo_models  # stage 1 only where a test asks for it

    return build_demo_models(tmp_path_factory.mktemp("demo_models"))


# --------------------------------------------------------------------------- stage 2


@pytest.fixture(scope="session")
def skeleton_cache(tmp_path_factory) -> Path:
    """The tiny demo cache without a feature set (27 samples; subjects 1, 2 train, 3 tests)."""
    return write_tiny_cache(tmp_path_factory.mktemp("tiny") / "cache", features=False)


def _skeleton_only_run(stream: str, cache: Path, tmp_path_factory) -> Path:
    return train(cache, tmp_path_factory.mktemp(f"{stream}-run") / "run", "--stream", stream, *SKELETON_ONLY,
                 *ONE_EPOCH)


@pytest.fixture(scope="session")
def joint_run(skeleton_cache, tmp_path_factory) -> Path:
    """Work dir of one skeleton-only epoch on the joint stream of `skeleton_cache`."""
    return _skeleton_only_run("joint", skeleton_cache, tmp_path_factory)


@pytest.fixture(scope="session")
def bone_run(skeleton_cache, tmp_path_factory) -> Path:
    """Work dir of one skeleton-only epoch on the bone stream of `skeleton_cache`."""
    return _skeleton_only_run("bone", skeleton_cache, tmp_path_factory)
