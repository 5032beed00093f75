"""The paper's six-stream ensemble (issue #24 item 4): CTR-GCN joint, bone, joint motion and bone
motion plus HD-GCN joint and bone, each trained with --val-split into its own `-latest` run, fused
by one `mmcl ensemble ... --search-val` whose weights are chosen on the validation reports only.

Six real 1-epoch runs (skeleton only, width 8) on the tiny cache, as the README types them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from stage2_cache import write_tiny_cache
from stage2_run import COMMON, ONE_EPOCH, SKELETON_ONLY, invoke

from shared.errors import MMCLError
from stage2_train import cli
from stage2_train.evaluation.ensemble import fuse
from stage2_train.evaluation.evaluate import topk_accuracy

SIX = [
    ("ctrgcn", "joint"),
    ("ctrgcn", "bone"),
    ("ctrgcn", "joint-motion"),
    ("ctrgcn", "bone-motion"),
    ("hdgcn", "joint"),
    ("hdgcn", "bone"),
]
LATEST = [
    "runs/demo-xsub-joint-latest",
    "runs/demo-xsub-bone-latest",
    "runs/demo-xsub-joint-motion-latest",
    "runs/demo-xsub-bone-motion-latest",
    "runs/demo-xsub-hdgcn-joint-latest",
    "runs/demo-xsub-hdgcn-bone-latest",
]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A folder holding cache/ and the six runs under runs/ (no --work-dir: the default names)."""
    root = tmp_path_factory.mktemp("six")
    cache = write_tiny_cache(root / "cache", features=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for seed, (backbone, stream) in enumerate(SIX, start=1):
            cli.train.main(
                [
                    "--cache",
                    str(cache),
                    *COMMON,
                    *SKELETON_ONLY,
                    *ONE_EPOCH,
                    "--backbone",
                    backbone,
                    "--stream",
                    stream,
                    "--base-channel",
                    "8",
                    "--val-split",
                    "0.3",
                    "--seed",
                    str(seed),
                ],
                standalone_mode=False,
            )
    return root


def test_six_runs_keep_six_latest_links(root):
    assert all((root / link / "eval-val" / "scores.npz").is_file() for link in LATEST)
    assert len({(root / link).resolve() for link in LATEST}) == 6


def test_one_command_fuses_six_streams_with_weights_chosen_on_validation(root, monkeypatch):
    monkeypatch.chdir(root)
    result = invoke("ensemble", *LATEST, "--search-val", "--out", "six.json")
    summary = json.loads((root / "six.json").read_text())
    search = summary["search"]
    assert search["pairing"] == "by backbone and stream" and len(summary["weights"]) == 6
    assert search["val_files"] == [str(Path(link) / "eval-val" / "scores.npz") for link in LATEST]
    assert [(s["backbone"], s["stream"]) for s in summary["streams"]] == SIX
    assert "hdgcn joint" in result.output and "chosen on validation" in result.output
    val = [np.load(root / link / "eval-val" / "scores.npz") for link in LATEST]
    test = [np.load(root / link / "eval" / "scores.npz") for link in LATEST]
    assert not set(val[0]["names"]) & set(test[0]["names"])  # held out of training, apart from the test split
    fused_val = fuse(np.stack([v["scores"] for v in val]), summary["weights"])
    assert search["val_top1"] == pytest.approx(topk_accuracy(fused_val, val[0]["labels"], 1))
    fused_test = fuse(np.stack([t["scores"] for t in test]), summary["weights"])
    assert summary["fused"]["top1"] == pytest.approx(topk_accuracy(fused_test, test[0]["labels"], 1))
    # the same as naming each validation report with --search, in another order (paired by backbone and stream)
    again = invoke(
        "ensemble", *LATEST, *sum((["--search", link] for link in reversed(LATEST)), []), "--out", "again.json"
    )
    assert again.exit_code == 0
    assert json.loads((root / "again.json").read_text())["weights"] == summary["weights"]


def test_search_val_and_search_exclude_each_other(root, monkeypatch):
    monkeypatch.chdir(root)
    result = invoke("ensemble", *LATEST[:2], "--search-val", "--search", LATEST[0], "--search", LATEST[1], ok=False)
    assert isinstance(result.exception, MMCLError) and "not both" in str(result.exception)
