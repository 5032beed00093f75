"""The recipe shown and fitted to the data (issue #25 item 1): the settings line names where each
setting came from, a recipe written for NTU is fitted to a small dataset (loudly), the user's own
values are kept (or refused when no batch fits), and a collapsed run ends with a warning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shared.errors import MMCLError
from stage2_train.training.config import resolve_with_sources
from stage2_train.training.recipe_fit import MIN_TOTAL_STEPS, collapse_warnings, fit_recipe, settings_lines
from stage2_cache import write_tiny_cache
from stage2_run import SKELETON_ONLY, invoke


def test_sources_name_default_recipe_file_and_flag():
    r = resolve_with_sources("ntu60", {"lr": 0.05}, {"epochs": 3, "seed": None}, file_name="my.yaml")
    assert r.sources["epochs"] == "flag" and r.sources["lr"] == "config file my.yaml"
    assert r.sources["batch_size"] == "recipe mmcl" and r.sources["recipe"] == "default"
    assert r.sources["tau"] == "default"
    line = settings_lines(r)[0]
    assert line.startswith("settings: ") and "epochs 3 (flag)" in line and "lr 0.05 (config file my.yaml)" in line
    assert "batch_size 200" in line and "(recipe mmcl)" in line


def test_init_from_recipe_sits_between_recipe_and_file():
    r = resolve_with_sources("sysu", {}, {}, inherited={"base_channel": 8, "recipe": "demo"})
    assert r.config.recipe == "demo" and r.sources["recipe"] == "--init-from"
    assert r.config.model.base_channel == 8 and r.sources["base_channel"] == "--init-from"
    assert r.config.optim.epochs == 4 and r.sources["epochs"] == "recipe demo"
    given = resolve_with_sources(
        "sysu", {"base_channel": 12}, {"recipe": "ctrgcn"}, inherited={"base_channel": 8, "recipe": "demo"}
    )
    assert (given.config.recipe, given.config.model.base_channel) == ("ctrgcn", 12)


def test_mmcl_recipe_on_24_samples_is_fitted_loudly():
    """The issue's case: 110 epochs of batch 200 on 24 training samples (one step an epoch)."""
    r, notes = fit_recipe(resolve_with_sources("my-actions", {}, {}), 24)
    assert r.config.optim.batch_size == 6 and r.sources["batch_size"] == "fitted to the data"
    assert r.config.optim.epochs == 110  # 4 steps x 110 epochs: enough steps in all
    assert any("batch 200 -> 6" in n and "--batch-size" in n for n in notes)


def test_short_demo_recipe_gets_more_epochs_and_a_stretched_schedule():
    r, notes = fit_recipe(resolve_with_sources("my-actions", {}, {"recipe": "demo"}), 24)
    o = r.config.optim
    assert o.batch_size == 6 and o.epochs * (24 // 6) >= MIN_TOTAL_STEPS
    assert o.epochs == 13 and o.steps == (10,) and o.warmup == 3
    assert any("epochs 4 -> 13" in n for n in notes)


def test_the_demo_dataset_keeps_its_recipe():
    r, notes = fit_recipe(resolve_with_sources("demo", {}, {}), 216)
    assert notes == [] and r.config.optim.batch_size == 8 and r.config.optim.epochs == 4


def test_user_values_are_kept_or_refused():
    r, notes = fit_recipe(resolve_with_sources("demo", {}, {"batch_size": 9, "epochs": 1}), 18)
    assert (r.config.optim.batch_size, r.config.optim.epochs) == (9, 1)
    assert len(notes) == 1 and notes[0].startswith("warning: 2 optimisation steps") and "--epochs 25" in notes[0]
    with pytest.raises(MMCLError, match="--batch-size 64 .* larger than the 18 training samples.*--batch-size 4"):
        fit_recipe(resolve_with_sources("demo", {}, {"batch_size": 64}), 18)


def test_collapse_is_warned_about():
    labels = np.arange(20) % 4
    one_class = np.zeros((20, 4))
    one_class[:, 2] = 1
    assert "predicts 'c' for 100 %" in collapse_warnings(one_class, labels, list("abcd"), "test")[0]
    good = np.eye(4)[labels]
    assert collapse_warnings(good, labels, list("abcd"), "test") == []


def test_a_collapsed_run_ends_with_the_warning_in_its_summary(tmp_path):
    """lr 0: the fresh classifier predicts near one class; the log and summary.json say so."""
    cache = write_tiny_cache(tmp_path / "cache", frames=(12, 20), features=False)
    result = invoke(
        "train",
        "--cache",
        cache,
        "--work-dir",
        tmp_path / "run",
        "--recipe",
        "demo",
        "--batch-size",
        "9",
        "--epochs",
        "1",
        "--lr",
        "0",
        "--window",
        "12",
        "--workers",
        "0",
        "--device",
        "cpu",
        *SKELETON_ONLY,
    )
    summary = json.loads((tmp_path / "run" / "eval" / "summary.json").read_text())
    assert summary["warnings"] and summary["warnings"][0].startswith("warning: the model")
    assert summary["warnings"][0] in result.output
