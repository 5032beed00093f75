"""The transformers backend: any AutoModelForImageTextToText checkpoint, batched, deterministic.

Per batch of B images: one forward pass over the B x Q question prompts gives the first-step
distribution for P(yes); one greedy `generate` over the B description prompts gives the text.
Prompts are left-padded so every row's next token follows its own last real token.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from shared.errors import MMCLError
from stage1_extract.mllm_backend import (
    MLLM_LABEL, DescriptionDecoding, MLLMBackend, PromptTexts, YesNoTokens, load_processor)
from stage1_extract.model_source import loading_error, resolve_model_source, revision_of



@dataclass
class TransformersOptions:
    """batch_size: images per pass (each brings Q question rows and one description row);
    dtype: "auto" = float32 on CPU, the checkpoint's own dtype on GPU; or float32/bfloat16/float16."""

    batch_size: int = 4
    max_new_tokens: int = 48
    dtype: str = "auto"
    revision: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise MMCLError(f"{MLLM_LABEL}: batch_size and max_new_tokens must be at least 1, got {self}")


def _torch_dtype(name: str, device: torch.device) -> torch.dtype | str:
    if name == "auto":
        return torch.float32 if device.type == "cpu" else "auto"
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise MMCLError(f"{MLLM_LABEL}: unknown dtype '{name}'; use auto, float32, bfloat16 or float16")
    return dtype


class TransformersBackend(MLLMBackend):
    name = "transformers"

    def __init__(self, spec: str, device: str = "cpu", options: TransformersOptions | None = None):
        from transformers import AutoModelForImageTextToText, GenerationConfig

        options = options or TransformersOptions()
        source = resolve_model_source(spec, MLLM_LABEL)
        self.device = torch.device(device)
        self.batch_size = options.batch_size
        self.processor = load_processor(source, options.revision)
        kwargs = {"revision": options.revision} if options.revision else {}
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                source.path_or_id, dtype=_torch_dtype(options.dtype, self.device), **kwargs
            )
        except (OSError, ValueError, KeyError) as exc:
            raise loading_error(MLLM_LABEL, source, exc) from exc
        self.model = model.to(self.device).eval()
        self.model_id = source.spec
        self.revision = revision_of(source, getattr(model.config, "_commit_hash", None))
        tokenizer = self.processor.tokenizer
        self.yes_no = YesNoTokens.from_tokenizer(tokenizer, spec)
        self.decoding = DescriptionDecoding.of(model.generation_config, options.max_new_tokens)
        self.generation_config = GenerationConfig(
            max_new_tokens=self.decoding.max_new_tokens,
            do_sample=False,
            repetition_penalty=self.decoding.repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id,
        )
        # Only the last position's logits are needed; models that can skip the rest say so.
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    def _inputs(self, images: list[Image.Image], texts: list[str]):
        inputs = self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        return inputs.to(self.device)

    def first_token_logits(self, images: list[Image.Image], texts: list[str]) -> torch.Tensor:
        """(R,) image/prompt rows -> (R, V) logits of the first answer token."""
        extra = {"logits_to_keep": 1} if self._logits_to_keep else {}
        with torch.inference_mode():
            return self.model(**self._inputs(images, texts), **extra).logits[:, -1]

    def describe(self, images: list[Image.Image], text: str) -> list[str]:
        inputs = self._inputs(images, [text] * len(images))
        with torch.inference_mode():
            generated = self.model.generate(**inputs, generation_config=self.generation_config)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        return [d.strip() for d in self.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def _answer_batch(self, images: list[Image.Image], texts: PromptTexts) -> tuple[np.ndarray, list[str]]:
        num_questions = len(texts.questions)
        row_images = [im for im in images for _ in range(num_questions)]
        row_texts = texts.questions * len(images)
        yes_prob = self.yes_no.from_logits(self.first_token_logits(row_images, row_texts))
        return yes_prob.reshape(len(images), num_questions), self.describe(images, texts.describe)
