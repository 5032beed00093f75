"""Runs never overwrite each other (issue #25 item 4): without --work-dir each `mmcl train` gets a
new runs/<dataset>-<protocol>-<stream>-seed<S>-<time>, `runs/<...>-latest` points at the newest,
`--resume` alone continues it, and --work-dir is used exactly as given."""

from __future__ import annotations

import os
from pathlib import Path

from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.training.run_dirs import new_run_dir, point_latest
from stage2_cache import write_tiny_cache
from stage2_run import COMMON, ONE_EPOCH, SKELETON_ONLY, invoke

FLAGS = (*COMMON, *ONE_EPOCH, *SKELETON_ONLY)


def test_two_runs_get_two_folders_and_latest_follows(tmp_path, monkeypatch):
    cache = write_tiny_cache(tmp_path / "cache", frames=(12, 20), features=False)
    monkeypatch.chdir(tmp_path)
    invoke("train", "--cache", cache, "--seed", "1", *FLAGS)
    invoke("train", "--cache", cache, "--seed", "1", *FLAGS)  # the same settings, the same second maybe
    invoke("train", "--cache", cache, "--seed", "2", *FLAGS)
    runs = sorted(p.name for p in Path("runs").iterdir() if not p.is_symlink())
    assert len(runs) == 3 and all(r.startswith("demo-xsub-joint-seed") for r in runs)
    assert sum(r.startswith("demo-xsub-joint-seed1-") for r in runs) == 2
    latest = Path("runs/demo-xsub-joint-latest")
    assert latest.is_symlink() and not os.path.isabs(os.readlink(latest))
    assert latest.resolve().name.startswith("demo-xsub-joint-seed2-")
    assert all((Path("runs") / r / "last.pt").is_file() for r in runs)

    result = invoke(
        "train",
        "--cache",
        cache,
        "--seed",
        "2",
        "--resume",
        *FLAGS[: -len(ONE_EPOCH) - 2],
        "--epochs",
        "2",
        "--warmup",
        "0",
        "--window",
        "12",
        "--workers",
        "0",
        *SKELETON_ONLY,
    )
    assert f"resuming {Path('runs') / os.readlink(latest)} after epoch 1" in result.output
    assert load_checkpoint(latest / "last.pt").epoch == 2
    assert len([p for p in Path("runs").iterdir() if not p.is_symlink()]) == 3


def test_work_dir_is_honoured_exactly(tmp_path, monkeypatch):
    cache = write_tiny_cache(tmp_path / "cache", frames=(12, 20), features=False)
    monkeypatch.chdir(tmp_path)
    invoke("train", "--cache", cache, "--work-dir", "mine", *FLAGS)
    assert Path("mine/last.pt").is_file() and not Path("runs").exists()


def test_resume_without_an_earlier_run_is_one_line(tmp_path, monkeypatch):
    cache = write_tiny_cache(tmp_path / "cache", frames=(12, 20), features=False)
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--cache", cache, "--resume", *FLAGS, ok=False)
    assert "no earlier run at runs/demo-xsub-joint-latest" in str(result.exception)


def test_new_run_dir_never_reuses_a_folder(tmp_path):
    first = new_run_dir("x", "seed1", when=0, root=tmp_path)
    first.mkdir()
    second = new_run_dir("x", "seed1", when=0, root=tmp_path)
    assert second != first and second.name == first.name + "-2"
    assert point_latest(second, "x", root=tmp_path).resolve() == second.resolve()
