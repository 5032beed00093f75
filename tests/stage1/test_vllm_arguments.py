"""The vLLM backend's engine and sampling arguments, built without vLLM (it cannot run on this CPU):
one image and no video per prompt, prefix caching, images bounded to the temporal image exactly as
the transformers backend resizes them, the checkpoint's repetition penalty in both backends, and
bench_gpu's vLLM options valid (it once passed engine settings build_mllm refuses)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from stage1_extract.featurize import ModelSpecs, mllm_options
from stage1_extract.mllm_backend import DescriptionDecoding, load_processor
from stage1_extract.mllm_factory import _options
from stage1_extract.mllm_vllm import VLLMOptions, image_processor_kwargs, llm_kwargs, sampling_kwargs
from stage1_extract.model_source import resolve_model_source

BENCH_GPU = Path(__file__).resolve().parents[2] / "bench" / "bench_gpu.py"


@pytest.fixture(scope="module")
def tiny_processor(demo_models):
    return load_processor(resolve_model_source(str(demo_models["mllm"]), "MLLM"))


def test_engine_arguments_one_image_no_video_prefix_caching_bounded_images(tiny_processor):
    specs = ModelSpecs(backend="vllm")
    options = VLLMOptions(**mllm_options(specs, 64, (280, 112)))
    kwargs = llm_kwargs("some/model", options, image_processor_kwargs(tiny_processor, options.image_size))
    assert kwargs["limit_mm_per_prompt"] == {"image": 1, "video": 0}
    assert kwargs["enable_prefix_caching"] is True
    assert kwargs["mm_processor_kwargs"] == {"max_pixels": 280 * 112}  # a multiple of 28 on both sides
    assert kwargs["max_logprobs"] >= 20
    assert "mm_processor_kwargs" not in llm_kwargs("m", options, {})  # a processor without a pixel bound


def test_image_bound_rounds_to_the_resize_grid_and_never_exceeds_the_processors_own(tiny_processor):
    own = tiny_processor.image_processor.size.longest_edge  # the tiny Qwen's bound: 128 x 28 x 28
    assert own == 100352
    assert image_processor_kwargs(tiny_processor, (281, 113)) == {"max_pixels": 308 * 140}
    # 1120x448 is above the tiny model's bound: transformers resizes it down, so vLLM must too
    assert image_processor_kwargs(tiny_processor, (1120, 448)) == {"max_pixels": own}
    assert image_processor_kwargs(tiny_processor, None) == {}

    class FixedSize:  # a LLaVA-style processor: a fixed square, no pixel bound
        image_processor = type("P", (), {"size": {"shortest_edge": 336}})()

    assert image_processor_kwargs(FixedSize(), (1120, 448)) == {}


def test_both_backends_decode_descriptions_with_the_checkpoints_repetition_penalty(demo_models, tmp_path):
    from stage1_extract.mllm_transformers import TransformersBackend

    model = tmp_path / "tiny-with-penalty"
    shutil.copytree(demo_models["mllm"], model)
    config = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**config, "repetition_penalty": 1.05}))
    source = resolve_model_source(str(model), "MLLM")
    decoding = DescriptionDecoding.of_checkpoint(source, None, 48)
    assert decoding == DescriptionDecoding(48, 1.05)
    first, describe = sampling_kwargs(decoding, 20)
    assert describe == {"max_tokens": 48, "temperature": 0.0, "repetition_penalty": 1.05}
    assert first == {"max_tokens": 1, "temperature": 0.0, "logprobs": 20}
    assert TransformersBackend(str(model)).generation_config.repetition_penalty == 1.05
    plain = DescriptionDecoding.of_checkpoint(resolve_model_source(str(demo_models["mllm"]), "MLLM"), None, 48)
    assert plain.repetition_penalty == 1.0  # the demo model sets none: its descriptions are unchanged


def test_bench_gpu_vllm_options_are_what_build_mllm_accepts(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_gpu", BENCH_GPU)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    options = _options(VLLMOptions, bench.vllm_options(), "vllm")  # the check build_mllm makes first
    assert options.engine.dtype == "float32" and options.engine.max_model_len == 2048
    assert options.image_size == bench.VLLM_IMAGE
