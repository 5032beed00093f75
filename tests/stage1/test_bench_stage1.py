"""bench/stage1_gpu.py, whose 7B run only a lent GPU makes: its tiny run goes through the real
transformers backend, the 7B's published config builds the 8.29 B-parameter model, and the
tokenizer's special ids are the ones that model looks for (checked end to end at a narrow width)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench" / "stage1_gpu.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("stage1_gpu", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["stage1_gpu"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("stage1_gpu", None)


@pytest.fixture(scope="module")
def qwen_tokenizer(bench):
    from stage1_extract.demo.models import TinyQwenConfig, train_tokenizer

    return bench.with_qwen_token_ids(train_tokenizer(TinyQwenConfig()), 151643)


def result_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("RESULT gpu-stage1 samples/s ")]


def test_tiny_scale_runs_through_the_transformers_backend(bench, capsys):
    assert bench.main(["--scale", "tiny", "--batches", "1"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[-1] == result_lines(out)[0] and "projected" in lines[-1] and "NTU120 113,945 videos" in lines[-1]
    assert float(lines[-1].split()[3]) > 0
    assert "answers ok" in out and "image-prompt tokens/s" in out
    assert "description decoding steps per batch 48-48" in out  # random weights run to the real cap
    for phase in (bench.PREFILL, bench.QUESTIONS, bench.DESCRIPTION, "random weights on the device"):
        assert phase in out


def test_the_published_config_builds_the_7b_parameter_count(bench):
    assert bench.meta_parameter_count(bench.qwen_7b_config()) == bench.QWEN_7B_PARAMETERS == 8_292_166_656


def test_the_config_holds_the_published_values(bench):
    c = bench.QWEN25_VL_7B_CONFIG
    assert (
        c["hidden_size"],
        c["intermediate_size"],
        c["num_hidden_layers"],
        c["num_attention_heads"],
        c["num_key_value_heads"],
        c["vocab_size"],
    ) == (3584, 18944, 28, 28, 4, 152064)
    assert (
        c["image_token_id"],
        c["video_token_id"],
        c["vision_start_token_id"],
        c["vision_end_token_id"],
        c["eos_token_id"],
    ) == (151655, 151656, 151652, 151653, 151645)
    assert c["rope_scaling"]["mrope_section"] == [16, 24, 24] and c["rope_theta"] == 1e6
    assert not c["tie_word_embeddings"]
    v = c["vision_config"]
    assert (v["depth"], v["hidden_size"], v["out_hidden_size"], v["intermediate_size"], v["num_heads"]) == (
        32,
        1280,
        3584,
        3420,
        16,
    )
    assert (v["patch_size"], v["spatial_merge_size"], v["temporal_patch_size"], v["window_size"]) == (14, 2, 2, 112)
    assert v["fullatt_block_indexes"] == [7, 15, 23, 31]
    config = bench.qwen_7b_config()  # transformers reads the flat published layout as intended
    assert config.text_config.hidden_size == 3584 and config.vision_config.depth == 32
    assert config.image_token_id == 151655


def test_the_tokenizer_has_qwens_special_ids(bench, qwen_tokenizer):
    ids = qwen_tokenizer.convert_tokens_to_ids
    assert [ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|image_pad|>")] == [
        151643,
        151644,
        151645,
        151652,
        151655,
    ]
    assert len(qwen_tokenizer) == 151657 and qwen_tokenizer.decode(qwen_tokenizer.encode("yes")) == "yes"
    bench.check_token_ids(qwen_tokenizer, bench.qwen_7b_config())
    generation = bench.generation_config(qwen_tokenizer)
    assert generation.eos_token_id == [151645, 151643] and generation.repetition_penalty == 1.05


def test_the_7b_token_ids_reach_the_model_end_to_end(bench, monkeypatch, capsys):
    """The 7B path (its tokenizer, processor bounds and token ids) at a narrow width on the CPU: a real
    temporal image is 640 image tokens and every answer comes back."""
    from transformers import Qwen2_5_VLConfig

    narrow = copy.deepcopy(bench.QWEN25_VL_7B_CONFIG)
    narrow.update(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
    )
    narrow["vision_config"].update(
        depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, fullatt_block_indexes=[0]
    )
    monkeypatch.setattr(bench, "qwen_7b_config", lambda: Qwen2_5_VLConfig.from_dict(copy.deepcopy(narrow)))
    assert bench.run(bench.Scale("7b", "cpu", torch.float32, batches=1, batch_size=1)) == 0
    out = capsys.readouterr().out
    assert "image 1120x448: image prompt 660 tokens (640 image tokens)" in out and "answers ok" in out
    assert result_lines(out)
