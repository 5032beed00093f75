"""`mmcl ablate` on a tiny cache: four variants x two seeds of one epoch, then a rerun that trains
nothing, and the paired tests over seeds."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_rel

from shared.errors import MMCLError
from stage2_train.ablation.ablate import ablate
from stage2_train.ablation.report import paired_test, sign_flip_test
from stage2_train.training.config import load_config_file
from stage2_cache import write_tiny_cache
from stage2_run import COMMON, ONE_EPOCH

TINY = "base_channel: 8\n"


def run_ablation(cache: Path, out: Path, config: Path, capsys) -> str:
    ablate.main(
        ["--cache", str(cache), "--seeds", "2", "--out", str(out), "--config", str(config), *COMMON, *ONE_EPOCH],
        standalone_mode=False,
    )
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny(feature_cache, tmp_path_factory):
    root = tmp_path_factory.mktemp("ablation")
    cache = feature_cache
    config = root / "tiny.yaml"
    config.write_text(TINY)
    return cache, config, root / "out"


@pytest.fixture(scope="module")
def first_run(tiny):
    cache, config, out = tiny
    ablate.main(
        ["--cache", str(cache), "--seeds", "2", "--out", str(out), "--config", str(config), *COMMON, *ONE_EPOCH],
        standalone_mode=False,
    )
    return out


def rows(out: Path) -> list[dict]:
    with (out / "ablation.csv").open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.integration
def test_four_variants_two_seeds(first_run):
    table = rows(first_run)
    assert [(r["variant"], r["seed"]) for r in table] == [
        (v, s) for v in ("baseline", "+FAM", "+FRM", "MMCL") for s in ("1", "2")
    ]
    assert all(0 <= float(r["top1"]) <= 1 for r in table)
    heads = {}
    for r in table:
        cfg = load_config_file(Path(r["work_dir"]) / "config.yaml")
        heads[r["variant"]] = (cfg["use_fam"], cfg["use_frm"])
        # otherwise identical: the recipe and feature set are pinned, the tiny network is used
        assert (cfg["recipe"], cfg["features"], cfg["base_channel"], cfg["epochs"]) == ("demo", "tiny", 8, 1)
        assert cfg["seed"] == int(r["seed"])
    assert heads == {"baseline": (False, False), "+FAM": (True, False), "+FRM": (False, True), "MMCL": (True, True)}
    md = (first_run / "ablation.md").read_text()
    assert "paired t-test (scipy.stats.ttest_rel)" in md and "| +FAM |" in md and "drink water" in md
    per_class = (first_run / "ablation_per_class.csv").read_text().splitlines()
    assert per_class[0].startswith("class,name,accuracy baseline") and len(per_class) == 1 + 9
    assert (first_run / "ablation.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.integration
def test_rerun_trains_nothing_and_a_changed_run_again(tiny, first_run, capsys):
    cache, config, out = tiny
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed-*/last.pt")}
    assert len(stamps) == 8
    log = run_ablation(cache, out, config, capsys)
    assert log.count("not retrained") == 8
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # a run trained with other settings is retrained; one killed before its evaluation continues
    changed, killed = out / "fam" / "seed-2", out / "mmcl" / "seed-1"
    saved = (changed / "config.yaml").read_text()
    (changed / "config.yaml").write_text(saved.replace("lr: 0.1", "lr: 0.05"))
    (killed / "eval" / "summary.json").unlink()
    log = run_ablation(cache, out, config, capsys)
    assert log.count("not retrained") == 6
    assert f"+FAM seed 2 ({changed}): training" in log and f"MMCL seed 1 ({killed}): continuing last.pt" in log
    assert load_config_file(changed / "config.yaml")["lr"] == 0.1 and (killed / "eval" / "summary.json").exists()
    assert len(rows(out)) == 8


def test_flags_the_ablation_sets_are_refused(tiny):
    cache, config, out = tiny
    with pytest.raises(MMCLError, match="sets --seed itself"):
        ablate.main(["--cache", str(cache), "--seed", "3"], standalone_mode=False)


def test_sign_flip_test_exact():
    # all three differences positive: only all-plus and all-minus reach |mean| 2, 2 of 8 patterns
    assert sign_flip_test([1.0, 2.0, 3.0]).p_value == pytest.approx(0.25)
    assert sign_flip_test([1.0, -1.0]).p_value == 1.0
    # one sign against four: |mean| >= 0.6 for the patterns with at most one minus (5) and their negations
    assert sign_flip_test([1, 1, 1, 1, -1]).p_value == pytest.approx(12 / 32)
    many = sign_flip_test(np.ones(20))  # random patterns; only the two constant ones reach the mean
    assert "random" in many.method and many.p_value < 0.01


def test_paired_test_is_scipys_ttest_rel():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.6, 0.05, 5), rng.normal(0.5, 0.05, 5)
    result = paired_test(a, b)
    assert result.p_value == pytest.approx(ttest_rel(a, b).pvalue) and "ttest_rel" in result.method


def test_variants_share_the_full_variants_recipe(tmp_path):
    """Alone, `mmcl train --no-fam --no-frm` on NTU picks the ctrgcn recipe (other epochs, batch,
    steps); the ablation pins the full variant's, so only FAM and FRM differ. Resolution only."""
    from shared.registry import NTU60
    from stage2_train.ablation.ablate import plan_runs, resolve

    cache = write_tiny_cache(tmp_path / "cache", spec=NTU60, subjects=(1, 3))
    alone = resolve(["--cache", str(cache), "--no-fam", "--no-frm", "--work-dir", str(tmp_path / "w")])
    assert alone.recipe == "ctrgcn"
    plans = plan_runs(str(cache), 2, tmp_path / "out", [])
    assert [p.action for p in plans] == ["train"] * 8
    # the mmcl recipe's batch 200 fitted to the 60 training samples (recipe_fit: a quarter of them)
    assert {(p.cfg.recipe, p.cfg.optim.epochs, p.cfg.optim.batch_size, p.cfg.data.features) for p in plans} == {
        ("mmcl", 110, 15, "tiny")
    }
    pinned = plan_runs(str(cache), 1, tmp_path / "out", ["--recipe", "ctrgcn", "--epochs", "3"])
    assert {(p.cfg.recipe, p.cfg.optim.epochs) for p in pinned} == {("ctrgcn", 3)}


def test_without_scipy_the_sign_flip_test_is_used(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # `from scipy.stats import ...` raises ImportError
    result = paired_test([0.5, 0.6, 0.7], [0.4, 0.4, 0.4])
    assert result.method == "sign-flip permutation test (exact)" and result.p_value == pytest.approx(0.25)


def test_one_seed_reports_no_spread(tmp_path):
    """It once printed "61.11 ± 0.00 over 1 seeds"."""
    import numpy as np

    from stage2_train.ablation.report import RunResult, write_ablation

    names = ["a", "b"]
    results = [
        RunResult(v, 1, top1, top1, np.array([top1, top1]), names, tmp_path / v)
        for v, top1 in (("baseline", 0.6111), ("+FAM", 0.7778))
    ]
    write_ablation(tmp_path, results, ["baseline", "+FAM"], "demo")
    md = (tmp_path / "ablation.md").read_text()
    assert "| baseline | 61.11 |" in md and "± 0.00" not in md and "1 seed (1)" in md and "1 seeds" not in md


@pytest.mark.slow  # 8 one-epoch runs: about 2 min on the shared 2-core machine
def test_backbones_ablation_writes_the_backbone_by_variant_table(tiny, tmp_path, capsys):
    """`--backbones stgcnpp,protogcn`: the four variants per backbone (one seed), each backbone's own
    tables, and one table across them; a rerun trains nothing."""
    cache, config, _ = tiny
    out = tmp_path / "backbones"
    argv = [
        "--cache",
        str(cache),
        "--seeds",
        "1",
        "--out",
        str(out),
        "--backbones",
        "stgcnpp,protogcn",
        "--config",
        str(config),
        *COMMON,
        *ONE_EPOCH,
    ]
    ablate.main(argv, standalone_mode=False)
    for backbone in ("stgcnpp", "protogcn"):
        for r in rows(out / backbone):
            assert load_config_file(Path(r["work_dir"]) / "config.yaml")["backbone"] == backbone
    with (out / "ablation-backbones.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["backbone"], r["variant"]) for r in table] == [
        (b, v) for b in ("stgcnpp", "protogcn") for v in ("baseline", "+FAM", "+FRM", "MMCL")
    ]
    assert all(r["delta_top1"] == "" for r in table if r["variant"] == "baseline")
    own = {r["variant"]: float(r["top1"]) for r in rows(out / "protogcn")}
    for r in table:
        if r["backbone"] == "protogcn":
            assert float(r["top1_mean"]) == pytest.approx(own[r["variant"]], abs=1e-6)
            if r["variant"] != "baseline":
                assert float(r["delta_top1"]) == pytest.approx(own[r["variant"]] - own["baseline"], abs=1e-6)
    assert "| protogcn | MMCL | 1 |" in (out / "ablation-backbones.md").read_text()
    capsys.readouterr()
    ablate.main(argv, standalone_mode=False)
    assert capsys.readouterr().out.count("not retrained") == 8


def test_backbones_ablation_refuses_its_own_flags(tiny, tmp_path):
    cache = tiny[0]
    with pytest.raises(MMCLError, match="sets --backbone itself"):
        ablate.main(
            ["--cache", str(cache), "--out", str(tmp_path), "--backbones", "stgcnpp", "--backbone", "hdgcn"],
            standalone_mode=False,
        )
    with pytest.raises(Exception, match="distinct backbones"):
        ablate.main(
            ["--cache", str(cache), "--out", str(tmp_path), "--backbones", "stgcnpp,stgcnpp"], standalone_mode=False
        )
    with pytest.raises(Exception, match="'nope' is not one of 'ctrgcn', 'hdgcn', 'stgcnpp', 'protogcn'"):
        ablate.main(
            ["--cache", str(cache), "--out", str(tmp_path), "--backbones", "stgcnpp,nope"], standalone_mode=False
        )
    assert not list(tmp_path.rglob("last.pt"))  # refused before anything trained


def test_backbone_table_pairs_each_backbone_with_its_own_baseline(tmp_path):
    from stage2_train.ablation.report import RunResult, write_backbone_table

    def result(variant, seed, top1):
        return RunResult(variant, seed, top1, top1 - 0.1, np.array([top1]), ["a"], tmp_path)

    variants = ["baseline", "MMCL"]
    results = {
        "hdgcn": [
            result("baseline", 1, 0.5),
            result("baseline", 2, 0.7),
            result("MMCL", 1, 0.6),
            result("MMCL", 2, 0.9),
        ],
        "ctrgcn": [result("baseline", 1, 0.4), result("MMCL", 1, 0.3)],
    }
    csv_path, md_path = write_backbone_table(tmp_path, results, variants)
    with csv_path.open(newline="") as f:
        table = {(r["backbone"], r["variant"]): r for r in csv.DictReader(f)}
    assert list(table) == [("hdgcn", "baseline"), ("hdgcn", "MMCL"), ("ctrgcn", "baseline"), ("ctrgcn", "MMCL")]
    assert float(table["hdgcn", "MMCL"]["top1_mean"]) == pytest.approx(0.75)
    assert float(table["hdgcn", "MMCL"]["top1_std"]) == pytest.approx(np.std([0.6, 0.9], ddof=1))
    assert float(table["hdgcn", "MMCL"]["delta_top1"]) == pytest.approx(0.15)  # paired: (0.1 + 0.2) / 2
    assert float(table["ctrgcn", "MMCL"]["delta_top1"]) == pytest.approx(-0.1)
    assert table["ctrgcn", "baseline"]["delta_top1"] == ""
    assert "| hdgcn | MMCL | 2 | 75.00 ± 21.21 | 65.00 ± 21.21 | +15.00 |" in md_path.read_text()
    assert "| ctrgcn | MMCL | 1 | 30.00 | 20.00 | -10.00 |" in md_path.read_text()  # one seed: no "± 0.00"
