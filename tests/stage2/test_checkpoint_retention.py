"""`--keep-checkpoints N`: a run keeps its last N epoch checkpoints plus last.pt, and resumes from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from stage2_run import COMMON, ONE_EPOCH, SKELETON_ONLY, invoke, train

from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.training.work_dir import prune_checkpoints


def epochs_kept(work: Path) -> list[str]:
    return sorted(p.name for p in (work / "checkpoints").glob("*.pt"))


@pytest.mark.integration
def test_a_run_keeps_its_last_checkpoints_and_resumes_from_them(skeleton_cache, tmp_path):
    work = train(
        skeleton_cache, tmp_path / "run", *SKELETON_ONLY, *ONE_EPOCH, "--epochs", "3", "--keep-checkpoints", "2"
    )
    assert epochs_kept(work) == ["epoch-002.pt", "epoch-003.pt"]
    assert load_checkpoint(work / "last.pt").epoch == 3
    train(skeleton_cache, work, *SKELETON_ONLY, *ONE_EPOCH, "--epochs", "4", "--resume")
    assert epochs_kept(work) == ["epoch-003.pt", "epoch-004.pt"]  # the setting is kept on resume
    last, four = load_checkpoint(work / "last.pt"), load_checkpoint(work / "checkpoints" / "epoch-004.pt")
    assert last.epoch == 4 and all(torch.equal(last.model[k], four.model[k]) for k in last.model)


def test_zero_keeps_every_epoch_and_last_pt_is_never_pruned(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for e in range(1, 6):
        (folder / f"epoch-{e:03d}.pt").write_bytes(b"x")
    (tmp_path / "last.pt").write_bytes(b"x")
    assert prune_checkpoints(tmp_path, 5, 0) == []
    assert len(epochs_kept(tmp_path)) == 5
    prune_checkpoints(tmp_path, 5, 1)
    assert epochs_kept(tmp_path) == ["epoch-005.pt"] and (tmp_path / "last.pt").exists()


def test_the_help_gives_the_size_and_a_negative_count_is_refused(skeleton_cache, tmp_path):
    assert "about 15 MB" in invoke("train", "--help").output
    result = invoke(
        "train", "--cache", skeleton_cache, "--work-dir", tmp_path / "w", *COMMON, "--keep-checkpoints", "-1", ok=False
    )
    assert result.exit_code == 2 and "--keep-checkpoints" in result.output
    assert not (tmp_path / "w").exists()
