"""One name per concept across stage 2's commands: the evaluation batch is `--test-batch-size`
(train, test, zeroshot; test's and zeroshot's former `--batch-size` kept, hidden), and every
command that runs a network takes `--device auto|cpu|cuda`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from stage2_run import invoke

from stage2_train import cli

COMMANDS = {"train": cli.train, "test": cli.test, "zeroshot": cli.zeroshot, "predict": cli.predict}


def options(command) -> dict[str, object]:
    return {name: p for p in command.params for name in p.opts}


def test_the_evaluation_batch_and_the_device_have_one_name_everywhere():
    for name in ("train", "test", "zeroshot"):
        assert not options(COMMANDS[name])["--test-batch-size"].hidden, name
    for name in ("test", "zeroshot"):
        alias = options(COMMANDS[name])["--batch-size"]
        assert alias.hidden and "--batch-size" not in invoke(name, "--help").output, name
    for name, command in COMMANDS.items():
        assert list(options(command)["--device"].type.choices) == ["auto", "cpu", "cuda"], name


def test_test_takes_either_name_of_the_batch_size(joint_run, tmp_path):
    for flag, out in (("--test-batch-size", "a"), ("--batch-size", "b")):
        invoke("test", "--checkpoint", joint_run / "last.pt", flag, 4, "--device", "cpu", "--out", tmp_path / out)
    a, b = (np.load(tmp_path / d / "scores.npz") for d in "ab")
    np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["num_samples"] == 9


def test_predict_runs_where_device_says(joint_run, skeleton_cache):
    cpu = invoke(
        "predict", "--checkpoint", joint_run / "last.pt", "--cache", skeleton_cache, "--sample", 0, "--device", "cpu"
    )
    assert (
        invoke("predict", "--checkpoint", joint_run / "last.pt", "--cache", skeleton_cache, "--sample", 0).output
        == cpu.output
    )
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the refusal below cannot be shown")
    result = invoke(
        "predict",
        "--checkpoint",
        joint_run / "last.pt",
        "--cache",
        skeleton_cache,
        "--sample",
        0,
        "--device",
        "cuda",
        ok=False,
    )
    assert "--device cuda: no CUDA device is available" in str(result.exception)
