"""`mmcl train` run in this process on a tiny test cache, with the flags the stage-2 tests share."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from mmcl.cli import mmcl
from stage2_train import cli

# Every test run: the demo recipe on the CPU, batches of 9 (the tiny cache's 18 training samples).
COMMON = ("--recipe", "demo", "--batch-size", "9", "--device", "cpu")
# One epoch at the full learning rate on 12-frame windows, data loaded in this process.
ONE_EPOCH = ("--epochs", "1", "--warmup", "0", "--window", "12", "--workers", "0")
# Skeleton only: no RGB/text heads, so the cache needs no feature set.
SKELETON_ONLY = ("--no-fam", "--no-frm")
# The shared MMCL run (conftest's mmcl_run): FAM and FRM on, a narrow CTR-GCN, one epoch.
MMCL_RUN = ("--base-channel", "8", *ONE_EPOCH)


def train(cache: Path, work: Path, *flags: str) -> Path:
    """`mmcl train --cache cache --work-dir work` with COMMON and `flags`; returns `work`."""
    cli.train.main(["--cache", str(cache), "--work-dir", str(work), *COMMON, *flags], standalone_mode=False)
    return work


def invoke(*args, ok: bool = True):
    """`mmcl ARGS...` through click's runner; asserts success unless `ok=False`."""
    result = CliRunner().invoke(mmcl, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def copy_of(folder: Path, tmp_path_factory, name: str) -> Path:
    """A copy of a shared (read-only) folder such as conftest's runs, for a fixture that writes into it."""
    return Path(shutil.copytree(folder, tmp_path_factory.mktemp(name) / folder.name))
