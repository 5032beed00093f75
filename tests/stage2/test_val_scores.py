"""Validation-split score files: written by `mmcl train --val-split`, recomputed by
`mmcl test --split val`, and read by `mmcl ensemble --search` to choose the fusion weights.

Two real 1-epoch runs (joint, bone) on the tiny generated cache; 18 training samples, 2 a class,
so --val-split 0.3 holds out one sample of each of the 9 classes.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from stage2_cache import write_tiny_cache
from stage2_run import ONE_EPOCH, SKELETON_ONLY, train

from shared.cache_schema import SkeletonCache
from mmcl.cli import mmcl
from shared.errors import MMCLError
from stage2_train import cli
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.data.dataset import make_splits
from stage2_train.evaluation.ensemble import fuse
from stage2_train.evaluation.evaluate import topk_accuracy

REPORT_FILES = ("summary.json", "per_class.csv", "confusion.csv", "confusion.png", "scores.npz", "scores.pkl")
SEED = 5


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A tiny cache and two real 1-epoch runs (joint, bone; different training seeds) holding out
    30 % for validation with the same validation seed."""
    root = tmp_path_factory.mktemp("val")
    cache = write_tiny_cache(root / "cache", features=False)
    work = {}
    for seed, stream in enumerate(("joint", "bone"), start=1):
        work[stream] = train(
            cache,
            root / stream,
            "--stream",
            stream,
            *SKELETON_ONLY,
            *ONE_EPOCH,
            "--seed",
            str(seed),
            "--val-seed",
            str(SEED),
            "--val-split",
            "0.3",
        )
    return cache, work


def names(path: Path) -> list[str]:
    return np.load(path)["names"].tolist()


def run_test(checkpoint: Path, *extra: str) -> None:
    cli.test.main(["--checkpoint", str(checkpoint), "--device", "cpu", "--workers", "0", *extra], standalone_mode=False)


# --------------------------------------------------------------------------- training


def test_training_writes_a_validation_report_beside_the_test_report(runs):
    cache, work = runs
    run = work["joint"]
    for name in REPORT_FILES:
        assert (run / "eval-val" / name).stat().st_size > 0, name
    summary = json.loads((run / "eval-val" / "summary.json").read_text())
    assert (summary["split"], summary["stream"], summary["num_samples"]) == ("val", "joint", 9)
    assert (summary["val_split"], summary["val_seed"]) == (0.3, SEED)
    assert not any("selected on" in k for k in summary)  # best-epoch figures belong to the test report
    assert json.loads((run / "eval" / "summary.json").read_text())["split"] == "test"
    # the report's figures are those the epoch loop logged for the same model
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert summary["top1"] == pytest.approx(last["val_top1"])
    assert summary["mean_class_accuracy"] == pytest.approx(last["val_mean_class_accuracy"])
    # held out of training: one sample a class, all of training subjects, none of the test split
    val = np.load(run / "eval-val" / "scores.npz")
    skeletons = SkeletonCache(cache)
    splits = make_splits(skeletons, "xsub", 0.3, SEED)
    assert val["rows"].tolist() == splits.val.tolist()
    assert sorted(val["labels"].tolist()) == list(range(9))
    assert not set(val["names"].tolist()) & set(names(run / "eval" / "scores.npz"))
    # the same validation seed and fraction hold out the same samples for every stream and --seed
    assert names(work["bone"] / "eval-val" / "scores.npz") == val["names"].tolist()


def test_the_split_is_a_function_of_seed_and_fraction(runs):
    cache, _ = runs
    skeletons = SkeletonCache(cache)
    a, b = make_splits(skeletons, "xsub", 0.3, SEED), make_splits(SkeletonCache(cache), "xsub", 0.3, SEED)
    assert a.val.tolist() == b.val.tolist() and a.train.tolist() == b.train.tolist()
    assert not set(a.val) & set(a.train)
    assert make_splits(skeletons, "xsub", 0.3, SEED + 1).val.tolist() != a.val.tolist()


# --------------------------------------------------------------------------- mmcl test --split val


def test_test_command_recomputes_the_same_validation_split(runs, tmp_path):
    _, work = runs
    run = work["joint"]
    run_test(run / "last.pt", "--split", "val", "--out", str(tmp_path / "val"))
    trained, again = np.load(run / "eval-val" / "scores.npz"), np.load(tmp_path / "val" / "scores.npz")
    assert again["names"].tolist() == trained["names"].tolist()
    np.testing.assert_allclose(again["scores"], trained["scores"], atol=1e-5)
    assert json.loads((tmp_path / "val" / "summary.json").read_text())["split"] == "val"


def test_test_command_never_writes_over_the_training_report(runs, tmp_path):
    """Without --out each evaluation gets a folder of its own, eval-<split>-<time>; --out naming
    the training report (eval/, eval-val/, which `mmcl ensemble` reads) is refused."""
    _, work = runs
    copy = tmp_path / "copy"  # a copy of the run: its training report and a checkpoint
    shutil.copytree(work["joint"] / "eval", copy / "eval")
    shutil.copytree(work["joint"] / "eval-val", copy / "eval-val")
    (copy / "checkpoints").mkdir()
    shutil.copy(work["joint"] / "checkpoints" / "epoch-001.pt", copy / "checkpoints")
    before = {p: p.read_bytes() for p in copy.glob("eval*/*")}
    for split in ("val", "test", "test"):
        run_test(copy / "checkpoints" / "epoch-001.pt", "--split", split)
    made = sorted(p.name for p in copy.iterdir() if p.name not in ("eval", "eval-val", "checkpoints"))
    assert len(made) == 3 and all(re.fullmatch(r"eval-(test|val)-\d{8}-\d{6}(-2)?", m) for m in made), made
    val_dir = next(copy / m for m in made if m.startswith("eval-val-"))
    assert names(val_dir / "scores.npz") == names(copy / "eval-val" / "scores.npz")
    for report in ("eval", "eval-val"):
        with pytest.raises(MMCLError, match="training report"):
            run_test(copy / "checkpoints" / "epoch-001.pt", "--out", str(copy / report))
    assert {p: p.read_bytes() for p in copy.glob("eval/*")} | {
        p: p.read_bytes() for p in copy.glob("eval-val/*")
    } == before


def test_val_is_refused_where_it_would_not_be_the_held_out_split(runs, tmp_path):
    cache, work = runs
    ckpt = load_checkpoint(work["joint"] / "last.pt")
    with pytest.raises(MMCLError, match="validation split is defined by the training settings.*protocol"):
        run_test(work["joint"] / "last.pt", "--split", "val", "--protocol", "xview", "--out", str(tmp_path / "x"))
    other = write_tiny_cache(tmp_path / "other", features=False, per_cell=2)  # more samples, same classes
    with pytest.raises(MMCLError, match="holds other samples"):
        run_test(work["joint"] / "last.pt", "--split", "val", "--cache", str(other), "--out", str(tmp_path / "y"))
    ckpt.config["val_split"] = 0.0  # as a run trained without --val-split saves it
    ckpt.save(tmp_path / "no-val.pt")
    with pytest.raises(MMCLError, match="trained without --val-split"):
        run_test(tmp_path / "no-val.pt", "--split", "val", "--out", str(tmp_path / "z"))
    assert not any((tmp_path / d).exists() for d in ("x", "y", "z"))


# --------------------------------------------------------------------------- ensemble --search


def test_ensemble_searches_weights_on_the_validation_reports(runs, tmp_path):
    """The README recipe, as typed: test reports fused with weights chosen on eval-val/."""
    _, work = runs
    a, b = work["joint"], work["bone"]
    out = tmp_path / "ensemble.json"
    result = CliRunner().invoke(
        mmcl,
        [
            "ensemble",
            str(a / "eval" / "scores.npz"),
            str(b / "eval" / "scores.npz"),
            "--search",
            str(a / "eval-val" / "scores.npz"),
            "--search",
            str(b / "eval-val" / "scores.npz"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    search = summary["search"]
    assert search["pairing"] == "by stream" and summary["num_samples"] == 9
    assert search["val_files"] == [str(a / "eval-val" / "scores.npz"), str(b / "eval-val" / "scores.npz")]
    val = [np.load(p / "eval-val" / "scores.npz") for p in (a, b)]
    fused_val = fuse(np.stack([v["scores"] for v in val]), summary["weights"])
    assert search["val_top1"] == pytest.approx(topk_accuracy(fused_val, val[0]["labels"], 1))
    test = [np.load(p / "eval" / "scores.npz") for p in (a, b)]
    fused_test = fuse(np.stack([t["scores"] for t in test]), summary["weights"])
    assert summary["fused"]["top1"] == pytest.approx(topk_accuracy(fused_test, test[0]["labels"], 1))
    assert "chosen on validation" in result.output
    # work dirs: eval/ for the test files, eval-val/ for --search
    by_dir = tmp_path / "by-dir.json"
    result = CliRunner().invoke(
        mmcl, ["ensemble", str(a), str(b), "--search", str(a), "--search", str(b), "--out", str(by_dir)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(by_dir.read_text()) == summary
