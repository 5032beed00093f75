"""Stage 2's training loop and commands on a tiny generated cache (CPU, a narrow CTR-GCN)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from shared.cache_schema import FEATURES_DIR
from shared.errors import CacheError, MMCLError
from shared.registry import NW_UCLA
from stage2_train import cli
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.training.config import TrainConfig, load_config_file, resolve_config
from stage2_train.training.recipes import RECIPES
from stage2_train.training.device import resolve_mixed_precision
from stage2_train.models.loss_config import MMCLLossConfig
from stage2_cache import write_tiny_cache, write_tiny_features
from stage2_run import train

AUTO = resolve_mixed_precision("auto", "cpu")
TINY = "base_channel: 8\nepochs: 2\nwarmup: 2\nsteps: [5]\nworkers: 0\n"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("s2")
    cache = write_tiny_cache(root / "cache", invalid_rgb=[0, 4], invalid_text=[2])
    config = root / "tiny.yaml"
    config.write_text(TINY)
    return cache, config


def run_train(tiny, work: Path, *extra: str) -> Path:
    cache, config = tiny
    return train(cache, work, "--config", str(config), "--window", "16", "--seed", "3", *extra)


def metrics(work: Path) -> list[dict]:
    rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("samples_per_s")
    return rows


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_checkpoint(a).model, load_checkpoint(b).model
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)


@pytest.fixture(scope="module")
def straight(tiny, tmp_path_factory) -> Path:
    """Two epochs in one go: the run the other tests compare with."""
    return run_train(tiny, tmp_path_factory.mktemp("runs") / "straight")


# --------------------------------------------------------------------------- the loop


def test_outputs_of_a_run(straight):
    assert (straight / "config.yaml").exists() and (straight / "last.pt").exists()
    assert sorted(p.name for p in (straight / "checkpoints").iterdir()) == ["epoch-001.pt", "epoch-002.pt"]
    assert list((straight / "tensorboard").glob("events.*")) and (straight / "curves.png").stat().st_size > 0
    rows = metrics(straight)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.1])  # warm-up over 2 epochs
    assert all(np.isfinite(r["loss"]) and r["loss_align"] > 0 and r["loss_refine"] > 0 for r in rows)
    # 18 training samples an epoch; rows 0 and 4 lack RGB, row 2 lacks text: masked out of the terms
    assert [(r["fam_samples"], r["frm_samples"]) for r in rows] == [(16, 17), (16, 17)]
    summary = json.loads((straight / "eval" / "summary.json").read_text())
    assert summary["num_samples"] == 9 and summary["epoch"] == 2 and summary["features"] == "tiny"
    assert 0 <= summary["top1"] <= summary["top5"] <= 1
    assert not any("selected on" in k for k in summary)  # no best-epoch figure unless asked
    scores = np.load(straight / "eval" / "scores.npz")
    assert scores["scores"].shape == (9, 9) and len(scores["names"]) == 9
    per_class = (straight / "eval" / "per_class.csv").read_text().splitlines()
    assert per_class[0] == "class,name,support,correct,accuracy" and "hand waving" in per_class[4]
    for name in ("confusion.csv", "confusion.png", "scores.pkl"):
        assert (straight / "eval" / name).stat().st_size > 0
    ckpt = load_checkpoint(straight / "last.pt")
    assert ckpt.epoch == 2 and ckpt.spec.input.layout == "ntu25" and ckpt.spec.input.num_person == 2
    assert ckpt.spec.features.name == "tiny" and ckpt.spec.features.attrs["rgb_model"] == "tiny-test"
    assert any(k.startswith("fam.") for k in ckpt.model) and any(k.startswith("frm.") for k in ckpt.model)
    saved = load_config_file(straight / "config.yaml")
    assert saved["base_channel"] == 8 and saved["recipe"] == "demo" and saved["features"] == "tiny"


def test_same_seed_same_run(tiny, straight, tmp_path):
    again = run_train(tiny, tmp_path / "again")
    assert metrics(again) == metrics(straight)
    assert_same_weights(again / "last.pt", straight / "last.pt")


def test_resume_continues_exactly(tiny, straight, tmp_path):
    work = run_train(tiny, tmp_path / "resumed", "--epochs", "1")
    assert load_checkpoint(work / "last.pt").epoch == 1
    run_train(tiny, work, "--resume", "--epochs", "2")
    assert metrics(work) == metrics(straight)
    assert_same_weights(work / "last.pt", straight / "last.pt")
    assert_same_weights(work / "checkpoints" / "epoch-002.pt", straight / "checkpoints" / "epoch-002.pt")


@pytest.mark.integration
def test_compile_and_autocast_options_run(tiny, straight, tmp_path, capsys):
    """--compile captures the model (the eager backend here: inductor's code generation takes
    minutes on a CPU) with the same maths and checkpoint names; the other precision than the
    default's (bf16 on a CPU with native bf16, float32 elsewhere) trains too, with other numerics."""
    compiled = run_train(tiny, tmp_path / "compiled", "--compile", "eager", "--log-every", "1")
    assert load_checkpoint(compiled / "last.pt").config["compile"] == "eager"
    for got, want in zip(metrics(compiled), metrics(straight), strict=True):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
    wc, ws = load_checkpoint(compiled / "last.pt").model, load_checkpoint(straight / "last.pt").model
    assert wc.keys() == ws.keys()
    for k in ws:
        torch.testing.assert_close(wc[k], ws[k], rtol=1e-4, atol=1e-5, msg=k)
    assert load_checkpoint(straight / "last.pt").config["mixed_precision"] == AUTO  # what auto meant here
    # in this process, after runs of the default precision: the run holds its precision, not accelerate
    other = "no" if AUTO == "bf16" else "bf16"
    capsys.readouterr()
    run = run_train(tiny, tmp_path / other, "--epochs", "1", "--mixed-precision", other)
    assert load_checkpoint(run / "last.pt").config["mixed_precision"] == other
    assert f"cpu, {'float32' if other == 'no' else other + ' autocast'}" in capsys.readouterr().out  # the header
    row = metrics(run)[0]
    assert np.isfinite(row["loss"]) and row["loss"] != metrics(straight)[0]["loss"]
    assert all(v.dtype != torch.bfloat16 for v in load_checkpoint(run / "last.pt").model.values())


def test_a_default_run_on_cpu_trains_in_float32_and_says_so(tiny, tmp_path, capsys):
    """--mixed-precision auto is float32 on any CPU (bf16 autocast cost accuracy on real data);
    the header line names the precision actually used."""
    work = run_train(tiny, tmp_path / "default", "--epochs", "1")
    assert "; cpu, float32" in capsys.readouterr().out
    assert load_checkpoint(work / "last.pt").config["mixed_precision"] == "no"


def test_invalid_feature_rows_do_not_matter(tiny, tmp_path):
    """Garbage in the rows marked invalid must not change training at all."""
    cache, config = tiny
    other = write_tiny_cache(tmp_path / "cache", invalid_rgb=[0, 4], invalid_text=[2])
    path = write_tiny_features(other, invalid_rgb=[0, 4], invalid_text=[2], garbage=1e4)
    with h5py.File(path, "r") as f:
        assert f["rgb/pooled"][0].max() == 1e4 and f["text/embedding"][2].min() == -1e4
    a = run_train((other, config), tmp_path / "garbage", "--epochs", "1")
    b = run_train(tiny, tmp_path / "clean", "--epochs", "1")
    assert_same_weights(a / "last.pt", b / "last.pt")


def test_validation_split_labelled_best_epoch_and_init_from(tiny, straight, tmp_path, capsys):
    work = run_train(
        tiny,
        tmp_path / "val",
        "--val-split",
        "0.5",
        "--test-every",
        "1",
        "--no-frm",
        "--init-from",
        str(straight / "last.pt"),
    )
    rows = metrics(work)
    assert all("val_top1" in r and "test_top1" in r for r in rows)
    summary = json.loads((work / "eval" / "summary.json").read_text())
    assert "best_val_top1 (selected on val)" in summary and "best_test_top1 (selected on test)" in summary
    out = capsys.readouterr().out
    assert "9 train, 9 validation, 9 test samples" in out and "lack FAM input" in out
    n_backbone_and_fam = sum(1 for k in load_checkpoint(work / "last.pt").model if not k.startswith("frm."))
    assert f"{n_backbone_and_fam} tensors loaded" in out  # all but FRM's, which this model lacks


def test_test_command_reproduces_the_final_evaluation(straight, tmp_path):
    cli.test.main(
        ["--checkpoint", str(straight / "last.pt"), "--out", str(tmp_path / "eval"), "--device", "cpu"],
        standalone_mode=False,
    )
    a = np.load(straight / "eval" / "scores.npz")
    b = np.load(tmp_path / "eval" / "scores.npz")
    np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)
    assert a["names"].tolist() == b["names"].tolist()


def test_nw_ucla_trains_with_its_own_feeder_and_one_person(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache", spec=NW_UCLA, subjects=(1, 3), features=False)
    config = tmp_path / "ucla.toml"
    config.write_text("base_channel = 8\nepochs = 1\nrepeat = 2\n")
    work = run_train(
        (cache, config), tmp_path / "ucla", "--no-fam", "--no-frm", "--recipe", "ctrgcn", "--batch-size", "10"
    )
    ckpt = load_checkpoint(work / "last.pt")
    cfg, model = ckpt.train_config(), ckpt.spec.input
    assert (cfg.augment.kind, cfg.data.repeat, cfg.optim.weight_decay) == ("ucla-view", 2, 1e-4)
    assert (ckpt.spec.protocol, model.layout, model.num_person, model.num_point) == ("view3", "kinect_v1", 1, 20)
    assert json.loads((work / "eval" / "summary.json").read_text())["num_samples"] == 10


# --------------------------------------------------------------------------- bad input


def test_missing_features_with_fam_on(tiny, tmp_path):
    cache = write_tiny_cache(tmp_path / "cache", features=False)
    with pytest.raises(CacheError, match=f"no feature file in .*{FEATURES_DIR}.*--skeletons-only.*--no-fam --no-frm"):
        run_train((cache, tiny[1]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_protocol_the_dataset_lacks(tiny, tmp_path):
    with pytest.raises(MMCLError, match="has no protocol 'xset'; choose one of: xsub, xview"):
        run_train(tiny, tmp_path / "run", "--protocol", "xset")


def test_corrupted_checkpoint_on_resume(tiny, tmp_path):
    work = run_train(tiny, tmp_path / "run", "--epochs", "1", "--no-fam", "--no-frm")
    last = work / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    with pytest.raises(MMCLError, match="last.pt: unreadable or corrupted checkpoint"):
        run_train(tiny, work, "--resume", "--epochs", "2", "--no-fam", "--no-frm")
    assert {p: p.read_bytes() for p in work.rglob("*") if p.is_file()} == before


def test_training_weighs_its_loss_terms_with_the_papers_values(straight):
    """Every recipe (and dataset variant) resolves to MMCL's weights, and the loop combines the
    terms with them: each epoch's mean total is CE + 0.2 refine + 0.1 align (means are linear)."""
    for name in RECIPES:
        for dataset in ("ntu60", "ntu120", "nw-ucla", "demo"):
            loss = resolve_config(dataset, {}, {"recipe": name}).loss
            assert (loss.lambda_refine, loss.lambda_align, loss.tau) == (0.2, 0.1, 0.4), (name, dataset)
    assert load_checkpoint(straight / "last.pt").train_config().loss == MMCLLossConfig(0.2, 0.1, 0.4)
    for r in metrics(straight):
        assert r["loss"] == pytest.approx(r["loss_ce"] + 0.2 * r["loss_refine"] + 0.1 * r["loss_align"], rel=1e-5)


def test_config_precedence_and_recipes(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("epochs = 3\nbatch-size = 8\n")
    file_values = load_config_file(f)
    cfg = resolve_config("demo", file_values, {"epochs": 2, "lr": None})
    assert (cfg.recipe, cfg.optim.epochs, cfg.optim.batch_size, cfg.augment.window) == (
        "demo",
        2,
        8,
        RECIPES["demo"]["window"],
    )
    assert resolve_config("ntu60", {}, {}).recipe == "mmcl"
    plain = resolve_config("ntu60", {}, {"use_fam": False, "use_frm": False})
    assert (plain.recipe, plain.optim.epochs, plain.optim.batch_size, plain.optim.steps) == ("ctrgcn", 65, 64, (35, 55))
    ucla = resolve_config("nw-ucla", {}, {"use_fam": False, "use_frm": False})
    assert (
        ucla.get("batch_size"),
        ucla.get("weight_decay"),
        ucla.get("steps"),
        ucla.get("window"),
        ucla.get("repeat"),
        ucla.get("augment"),
    ) == (16, 1e-4, (50,), 52, 5, "ucla-view")
    assert resolve_config("ntu60", {}, {}, base={**TrainConfig().to_dict(), "epochs": 7}).optim.epochs == 7
    nested = tmp_path / "nested.yaml"  # a section may also be given as a mapping
    nested.write_text("optim: {lr: 0.05, epochs: 3}\naugment: ucla-view\n")
    cfg = resolve_config("demo", load_config_file(nested), {})
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.augment.kind) == (0.05, 3, "ucla-view")
    nested.write_text("optim: {lrr: 0.05}\n")
    with pytest.raises(MMCLError, match="optim.lrr"):
        load_config_file(nested)
    f.write_text("epochz = 1\n")
    with pytest.raises(MMCLError, match="unknown setting"):
        load_config_file(f)


# --------------------------------------------------------------------------- isolation from stage 1


def test_stage2_never_imports_stage1_or_model_libraries(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache", subjects=(1, 3), features=False)
    (tmp_path / "tiny.yaml").write_text(TINY)
    script = textwrap.dedent(f"""
        import sys, torch
        torch.set_num_threads(1)
        from stage2_train.cli import train
        train.main(["--cache", {str(cache)!r}, "--work-dir", {str(tmp_path / "run")!r}, "--no-fam", "--no-frm",
                    "--recipe", "demo", "--config", {str(tmp_path / "tiny.yaml")!r}, "--epochs", "1",
                    "--window", "12", "--device", "cpu"], standalone_mode=False)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("vllm", "stage1_extract")
                     or m.startswith("transformers.models") or m == "sentence_transformers")
        print("BAD", bad)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "BAD []" in out.stdout, out.stdout[-2000:]
    assert "features: none" in out.stdout
