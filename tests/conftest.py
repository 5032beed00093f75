"""Fixtures shared by several test files, each built once a session.

They are read-only for the tests that use them: a test that writes into one copies it first
(`stage2_run.copy_of`). Each is checked at the session's end: a file added, removed or rewritten in it fails
the run (`checked_unchanged`), so no test depends on another's changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from stage2_cache import write_tiny_cache
from stage2_run import MMCL_RUN, ONE_EPOCH, SKELETON_ONLY, train


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


# --------------------------------------------------------------------------- read-only folders


def fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time (ns)."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def checked_unchanged(request, folder: Path) -> Path:
    """`folder`, checked unchanged when the session ends."""
    before = fingerprint(folder)

    def check() -> None:
        after = fingerprint(folder)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"a test changed the shared {folder} (copy it first: stage2_run.copy_of): {changed}"

    request.addfinalizer(check)
    return folder


# --------------------------------------------------------------------------- stage 2


@pytest.fixture(scope="session")
def skeleton_cache(request, tmp_path_factory) -> Path:
    """The tiny demo cache without a feature set (27 samples; subjects 1, 2 train, 3 tests)."""
    return checked_unchanged(request, write_tiny_cache(tmp_path_factory.mktemp("tiny") / "cache", features=False))


@pytest.fixture(scope="session")
def feature_cache(request, tmp_path_factory) -> Path:
    """The tiny demo cache with its feature set `tiny`: `skeleton_cache`'s skeletons (the same seed)."""
    return checked_unchanged(request, write_tiny_cache(tmp_path_factory.mktemp("tiny-features") / "cache"))


def _skeleton_only_run(request, stream: str, cache: Path, tmp_path_factory) -> Path:
    return checked_unchanged(
        request,
        train(cache, tmp_path_factory.mktemp(f"{stream}-run") / "run", "--stream", stream, *SKELETON_ONLY, *ONE_EPOCH),
    )


@pytest.fixture(scope="session")
def joint_run(request, skeleton_cache, tmp_path_factory) -> Path:
    """Work dir of one skeleton-only epoch on the joint stream of `skeleton_cache`."""
    return _skeleton_only_run(request, "joint", skeleton_cache, tmp_path_factory)


@pytest.fixture(scope="session")
def bone_run(request, skeleton_cache, tmp_path_factory) -> Path:
    """Work dir of one skeleton-only epoch on the bone stream of `skeleton_cache`."""
    return _skeleton_only_run(request, "bone", skeleton_cache, tmp_path_factory)


@pytest.fixture(scope="session")
def mmcl_run(request, feature_cache, tmp_path_factory) -> Path:
    """Work dir of one MMCL epoch (FAM and FRM on; CTR-GCN of base width 8, 12-frame windows) on
    `feature_cache`."""
    return checked_unchanged(request, train(feature_cache, tmp_path_factory.mktemp("mmcl-run") / "run", *MMCL_RUN))
