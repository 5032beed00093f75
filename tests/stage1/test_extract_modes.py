"""`mmcl extract`'s shape (issue #22 item 2): one typed options object built from the flags, one function
per mode, each given that object, and the flags choosing the mode in one place (`choose_mode`)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from shared.errors import MMCLError
from stage1_extract.cli import extract
from stage1_extract.extract_modes import MODES, choose_mode
from stage1_extract.extract_options import ExtractOptions


def options(*flags: str) -> ExtractOptions:
    """The options `mmcl extract --dataset demo FLAGS...` builds."""
    return ExtractOptions(**extract.make_context("extract", ["--dataset", "demo", *map(str, flags)]).params)


def test_every_flag_is_a_field_of_the_options():
    assert {p.name for p in extract.params} == {f.name for f in dataclasses.fields(ExtractOptions)}
    assert ExtractOptions.__dataclass_params__.frozen


@pytest.mark.parametrize("name", sorted(MODES))
def test_each_mode_is_a_function_of_the_options(name):
    parameters = list(inspect.signature(MODES[name]).parameters.values())
    assert [(p.name, p.annotation) for p in parameters] == [("options", "ExtractOptions")]


@pytest.mark.parametrize(
    "flags, mode",
    [
        ((), "single"),
        (("--engine", "ray"), "ray"),
        (("--skeletons-only",), "skeletons"),
        (("--skeletons-only", "--engine", "ray"), "skeletons"),
        (("--skeletons-only", "--import-pyskl", "{file}"), "import"),
        (("--skeletons-only", "--import-npz", "{file}"), "import"),
        (("--import-pyskl", "{file}"), "single"),  # imported, then the features extracted
        (("--import-npz", "{file}", "--engine", "ray"), "ray"),
        (("--merge",), "merge"),
        (("--merge", "--skeletons-only", "--engine", "ray"), "merge"),
        (("--merge", "--import-npz", "{file}", "--import-pyskl", "{file}"), "merge"),
    ],
)
def test_the_flags_choose_one_mode(tmp_path, flags, mode):
    file = tmp_path / "skeletons.pkl"
    file.touch()
    chosen = options(*(f.format(file=file) for f in flags))
    assert choose_mode(chosen) == mode and mode in MODES


def test_two_sources_of_skeletons_are_refused(tmp_path):
    file = tmp_path / "skeletons.pkl"
    file.touch()
    with pytest.raises(MMCLError, match="choose one source of skeletons"):
        choose_mode(options("--import-npz", file, "--import-pyskl", file, "--skeletons-only"))


def test_the_options_derive_the_run_settings():
    chosen = options(
        "--frames",
        3,
        "--image-size",
        "300x100",
        "--crop-margin",
        0.2,
        "--batch-size",
        7,
        "--vllm-max-model-len",
        4096,
        "--device",
        "cpu",
        "--feature-set",
        "my set",
    )
    assert (chosen.image.frames, chosen.image.image_size, chosen.image.margin) == (3, (300, 100), 0.2)
    assert chosen.run_batch_size == 7 and chosen.models.vllm.max_model_len == 4096
    assert chosen.models.device == "cpu" and chosen.feature_set_name == "my-set"
    assert chosen.out == Path("cache") and chosen.progress


def test_the_options_cannot_change():
    with pytest.raises(dataclasses.FrozenInstanceError):
        options().dataset = "ntu60"
