"""The demo's SYSU-3D-HOI and UTD-MHAD layouts hold enough subjects for their protocols, and the
README's domain-adaptation commands run on the demo: `mmcl extract --dataset sysu`, `mmcl zeroshot
--protocol xsub` with an NTU-layout model, and fine-tuning with `--init-from` on the train half."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.registry import SYSU
from stage1_extract.demo.configs import SysuConfig, UtdConfig
from stage1_extract.demo.dataset import generate_sysu
from stage1_demo import demo_model_args
from stage2_cache import write_tiny_cache
from stage2_run import COMMON, ONE_EPOCH, SKELETON_ONLY, invoke

XSUB = SYSU.protocol("xsub")
TINY_YAML = "base_channel: 8\n"  # a narrow network: seconds on 2 cores


def _halves(takes: list[tuple[int, int]]) -> tuple[set[int], set[int]]:
    """Activities performed by train-half and by test-half subjects."""
    train = {a for s, a in takes if s in XSUB.train_values}
    return train, {a for s, a in takes if s not in XSUB.train_values}


def test_default_sysu_demo_populates_both_xsub_halves_with_every_activity():
    config = SysuConfig()
    train, test = _halves(config.takes())
    assert train == test == set(config.activities)
    assert len(config.takes()) <= 2 * len(config.subjects)  # few clips per subject: generation stays quick
    assert set(config.subjects) == set(range(1, 41))


def test_default_utd_demo_has_the_release_subjects():
    assert UtdConfig().subjects == tuple(range(1, 9))


def test_per_subject_is_checked():
    from shared.errors import MMCLError

    with pytest.raises(MMCLError, match="per_subject"):
        SysuConfig(per_subject=5)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("demo_sysu")
    (work / "tiny.yaml").write_text(TINY_YAML)
    return work


@pytest.fixture(scope="module")
def sysu_cache(work, demo_models) -> Path:
    """`mmcl extract --dataset sysu` on a subset of the demo's own cast: its first three subjects of
    each xsub half (one activity each, in the demo's rotation), with the offline demo models."""
    cast = SysuConfig().subjects
    subjects = [s for s in cast if s in XSUB.train_values][:3] + [s for s in cast if s not in XSUB.train_values][:3]
    generate_sysu(work / "data" / "sysu", subjects=subjects, frames=(20, 26), workers=1, progress=False)
    invoke(
        "extract",
        "--dataset",
        "sysu",
        "--root",
        work / "data" / "sysu",
        "--out",
        work / "cache",
        *demo_model_args(demo_models),
        "--workers",
        0,
        "--quiet",
    )
    return work / "cache" / "sysu"


@pytest.fixture(scope="module")
def ntu_model(work) -> Path:
    """A tiny model trained on NTU-layout data (the demo dataset's classes), skeleton only."""
    cache = write_tiny_cache(work / "ntu", frames=(12, 20), features=False)
    invoke(
        "train",
        "--cache",
        cache,
        "--work-dir",
        work / "ntu-run",
        "--config",
        work / "tiny.yaml",
        *COMMON,
        *ONE_EPOCH,
        *SKELETON_ONLY,
    )
    return work / "ntu-run" / "last.pt"


@pytest.mark.integration
def test_zeroshot_xsub_on_the_demo_sysu(sysu_cache, ntu_model, work):
    assert len(list((sysu_cache / "features").glob("*.h5"))) == 1  # the full extraction ran
    invoke("zeroshot", "--checkpoint", ntu_model, "--cache", sysu_cache, "--protocol", "xsub", "--out", work / "zs")
    summary = json.loads((work / "zs" / "zeroshot.json").read_text())
    # the test half: subjects 21-23, one mapped activity each
    assert summary["target"] == "sysu" and summary["num_samples"] == 3


@pytest.mark.integration
def test_finetuning_xsub_on_the_demo_sysu(sysu_cache, ntu_model, work):
    result = invoke(
        "train",
        "--cache",
        sysu_cache,
        "--protocol",
        "xsub",
        "--init-from",
        ntu_model,
        "--work-dir",
        work / "ft",
        "--config",
        work / "tiny.yaml",
        *COMMON,
        *ONE_EPOCH,
        *SKELETON_ONLY,
        "--batch-size",
        "3",
        "--test-batch-size",
        "3",
    )
    assert "--init-from" in result.output
    assert (work / "ft" / "last.pt").is_file()
