"""The MLLM path on the tiny random Qwen2.5-VL built offline: demo builder, transformers backend,
the P(yes) rule, errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from shared.errors import MMCLError
from stage1_extract.demo.models import MANIFEST_NAME, MLLM_DIR_NAME, build_demo_models
from stage1_extract.mllm_backend import MLLMAnswer, PromptTexts, YesNoTokens
from stage1_extract.mllm_factory import build_mllm
from stage1_extract.mllm_transformers import SharedPrefix
from stage1_extract.model_specs import choose_backend
from stage1_extract.prompts import Prompts, load_prompts


@pytest.fixture(scope="module")
def mllm(demo_models):
    return build_mllm(str(demo_models["mllm"]), backend="transformers", device="cpu", batch_size=3, max_new_tokens=8)


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    """Four wide images, like temporal images of K stitched crops."""
    rng = np.random.default_rng(0)
    sizes = [(280, 112), (420, 140), (200, 100), (336, 112)]
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]


PROMPTS = load_prompts()


# -------------------------------------------------------------------------------------- demo builder
def test_demo_builder_is_deterministic_and_complete(demo_models, tmp_path):
    again = build_demo_models(tmp_path)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "processor_config.json"):
        assert (again["mllm"] / name).read_bytes() == (demo_models["mllm"] / name).read_bytes(), name
    assert demo_models["mllm"].name == MLLM_DIR_NAME
    assert "RANDOMLY INITIALISED" in (demo_models["mllm"] / "README.txt").read_text()
    manifest = json.loads((demo_models["mllm"].parent / MANIFEST_NAME).read_text())
    assert manifest == {role: str(path) for role, path in demo_models.items()}
    assert demo_models["rgb_encoder"].is_file() and (demo_models["text_encoder"] / "config.json").is_file()


# --------------------------------------------------------------------------------------- the P(yes) rule
RULE = YesNoTokens(yes_ids=np.array([1, 4]), no_ids=np.array([2]))


def test_yes_prob_rule_on_a_full_distribution():
    probs = torch.tensor([[0.10, 0.20, 0.30, 0.15, 0.25], [0.90, 0.0, 0.10, 0.0, 0.0]])
    got = RULE.from_logits(probs.log())
    np.testing.assert_allclose(got, [(0.20 + 0.25) / (0.20 + 0.25 + 0.30), 0.0], atol=1e-6)
    assert got.dtype == np.float32
    # The softmax normaliser cancels: shifted logits give the same answer.
    np.testing.assert_allclose(RULE.from_logits(probs.log() + 7.0), got, atol=1e-6)


def test_yes_prob_rule_on_top_candidates():
    log = math.log
    assert RULE.from_candidates({1: log(0.2), 2: log(0.3), 0: log(0.4)}) == pytest.approx(0.4)
    assert RULE.from_candidates({4: log(0.1), 1: log(0.1), 2: log(0.2)}) == pytest.approx(0.5)
    assert RULE.from_candidates({1: log(0.05), 3: log(0.9)}) == pytest.approx(1.0)
    assert math.isnan(RULE.from_candidates({0: log(0.6), 3: log(0.4)}))  # neither yes nor no
    assert math.isnan(RULE.from_candidates({}))


def test_yes_no_token_sets_of_the_demo_tokenizer(mllm):
    tokenizer = mllm.processor.tokenizer
    decoded = {tokenizer.decode([i]).strip().lower() for i in mllm.yes_no.yes_ids}
    assert decoded == {"yes"} and {tokenizer.decode([i]).strip().lower() for i in mllm.yes_no.no_ids} == {"no"}
    for word in ("yes", "Yes", " yes"):
        (token,) = tokenizer.encode(word, add_special_tokens=False)
        assert token in mllm.yes_no.yes_ids
    (token,) = tokenizer.encode("No", add_special_tokens=False)
    assert token in mllm.yes_no.no_ids


# --------------------------------------------------------------------------------- transformers backend
def test_answers_have_the_contract_shapes(demo_models, mllm, images):
    assert (mllm.name, mllm.model_id) == ("transformers", str(demo_models["mllm"]))
    assert mllm.revision.startswith("local:")
    answers = mllm.answer(images, PROMPTS)
    assert len(answers) == len(images)
    for answer in answers:
        assert isinstance(answer, MLLMAnswer) and answer.error is None
        assert answer.yes_prob.shape == (3,) and answer.yes_prob.dtype == np.float32
        determined = answer.yes_prob[~np.isnan(answer.yes_prob)]
        assert ((determined >= 0) & (determined <= 1)).all()
        assert isinstance(answer.description, str)


def test_yes_prob_is_the_rule_applied_to_the_first_token(mllm, images):
    """Wiring check: answer() equals the rule applied by hand to the model's first-step softmax."""
    texts = PromptTexts.render(mllm.processor, PROMPTS)
    logits = mllm.first_token_logits([images[1]], [texts.questions[2]])
    probs = logits.float().softmax(-1)[0]
    yes, no = probs[mllm.yes_no.yes_ids].sum(), probs[mllm.yes_no.no_ids].sum()
    expected = float(yes / (yes + no))
    assert mllm.answer([images[1]], PROMPTS)[0].yes_prob[2] == pytest.approx(expected, abs=1e-6)


def test_answers_are_deterministic_and_batch_independent(demo_models, mllm, images):
    first, second = mllm.answer(images, PROMPTS), mllm.answer(images, PROMPTS)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.yes_prob, b.yes_prob)
        assert a.description == b.description
    one_by_one = build_mllm(str(demo_models["mllm"]), backend="transformers", batch_size=1, max_new_tokens=8)
    for a, b in zip(first, one_by_one.answer(images, PROMPTS)):  # batches of 3 (+1) vs 1: left padding
        np.testing.assert_allclose(a.yes_prob, b.yes_prob, atol=1e-5)
        assert a.description == b.description


def _images_encoded(mllm, run) -> int:
    """How many images the vision tower encodes while `run()` runs."""
    grids = []
    hook = mllm.model.model.visual.register_forward_hook(
        lambda module, args, kwargs, out: grids.append(kwargs["grid_thw"].shape[0]), with_kwargs=True
    )
    try:
        run()
    finally:
        hook.remove()
    return sum(grids)


@pytest.mark.parametrize("system", [None, "Answer like a referee."])
def test_the_shared_image_prefix_answers_like_one_prompt_at_a_time(mllm, images, system):
    """Each image is encoded and prefilled once for all its prompts (issue #23, item 4), and the
    answers equal the per-prompt path's: every prompt with its own copy of the image."""
    texts = PromptTexts.render(mllm.processor, Prompts(PROMPTS.questions, PROMPTS.describe, system=system))
    split = mllm._shared_prefix(texts)
    assert split is not None and split.prefix.endswith(mllm.processor.image_token)
    assert len(split.suffixes) == len(texts.questions) + 1
    batch = images[:3]
    shared, per_prompt = {}, {}
    assert _images_encoded(mllm, lambda: shared.update(out=mllm._answer_shared(batch, split))) == len(batch)
    encoded = _images_encoded(mllm, lambda: per_prompt.update(out=mllm._answer_per_prompt(batch, texts)))
    assert encoded == len(batch) * (len(texts.questions) + 1)
    np.testing.assert_allclose(shared["out"][0], per_prompt["out"][0], atol=1e-5, rtol=0)
    assert shared["out"][1] == per_prompt["out"][1]
    assert shared["out"][0].shape == (len(batch), len(texts.questions)) and shared["out"][0].dtype == np.float32


def test_prompts_without_a_common_image_prefix_are_answered_one_at_a_time(mllm):
    texts = PromptTexts.render(mllm.processor, PROMPTS)
    assert SharedPrefix.split(mllm.processor, [texts.questions[0], "no image here"]) is None
    assert SharedPrefix.split(mllm.processor, [texts.questions[0], "x" + texts.describe]) is None
    two_images = texts.describe.replace(mllm.processor.image_token, mllm.processor.image_token * 2)
    assert SharedPrefix.split(mllm.processor, [texts.questions[0], two_images]) is None


def test_the_prompts_reach_the_model(mllm, images):
    system = Prompts(PROMPTS.questions, PROMPTS.describe, system="Answer like a referee.")
    texts = PromptTexts.render(mllm.processor, system)
    assert "Answer like a referee." in texts.questions[0] and PROMPTS.questions[0] in texts.questions[0]
    assert texts.describe.count("<|image_pad|>") == 1
    assert not np.allclose(mllm.answer(images[:1], system)[0].yes_prob, mllm.answer(images[:1], PROMPTS)[0].yes_prob)


def test_an_unusable_image_fails_alone(mllm, images):
    sliver = Image.new("RGB", (3000, 10))  # aspect ratio over 200: Qwen's image processor refuses it
    answers = mllm.answer([images[0], sliver, images[2]], PROMPTS)
    assert answers[1].error is not None and np.isnan(answers[1].yes_prob).all()
    assert answers[0].error is None and answers[2].error is None
    np.testing.assert_allclose(answers[0].yes_prob, mllm.answer(images[:1], PROMPTS)[0].yes_prob, atol=1e-5)


# ----------------------------------------------------------------------------------------------- errors
def test_missing_models_and_bad_options_are_clear_errors(tmp_path, demo_models, monkeypatch):
    import huggingface_hub.constants

    with pytest.raises(MMCLError, match="no such directory"):
        build_mllm(str(tmp_path / "missing-model"), backend="transformers")
    with pytest.raises(MMCLError, match="could not load local directory"):
        build_mllm(str(tmp_path), backend="transformers")  # a directory without a model
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no hub, and no waiting for it
    with pytest.raises(MMCLError, match="hub id 'someone/not-downloaded'"):
        build_mllm("someone/not-downloaded", backend="transformers")
    with pytest.raises(MMCLError, match="unknown; choose one of auto, transformers, vllm"):
        build_mllm(str(demo_models["mllm"]), backend="onnx")
    with pytest.raises(MMCLError, match="unknown option\\(s\\) beam_width"):
        build_mllm(str(demo_models["mllm"]), backend="transformers", beam_width=4)


def test_backend_choice():
    expected = "vllm" if torch.cuda.is_available() and _vllm_installed() else "transformers"
    assert choose_backend("auto") == expected
    assert choose_backend("transformers") == "transformers"


@pytest.mark.skipif("_vllm_installed()", reason="vllm is installed here")
def test_vllm_backend_without_vllm_is_a_clear_error(demo_models):
    with pytest.raises(MMCLError, match="vllm cannot be imported"):
        build_mllm(str(demo_models["mllm"]), backend="vllm")


def _vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None
