"""The transformers backend: any AutoModelForImageTextToText checkpoint, batched, deterministic.

Per batch of B images, with the image shared (the default): one forward pass over the B prompt
prefixes that end with the image (the vision tower and the prefill, once per image) keeps their
key/values; each question then continues from a copy of that cache for one step (its first-step
logits give P(yes)), and the description is generated greedily from another copy. Every prompt
renders as <shared prefix ending with the image><its own text>; where a tokenizer would split a
prompt differently from its two halves, or the model cannot continue from a cache, the per-prompt
path runs instead: one forward over the B x Q question prompts, one `generate` over the B
description prompts, each encoding the image again. Both give the same numbers (within float
rounding). Prompts are left-padded so every row's next token follows its own last real token.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from shared.errors import MMCLError
from stage1_extract.mllm_backend import (
    MLLM_LABEL,
    DescriptionDecoding,
    MLLMBackend,
    PromptTexts,
    YesNoTokens,
    load_processor,
)
from stage1_extract.model_source import loading_error, resolve_model_source, revision_of


@dataclass
class TransformersOptions:
    """batch_size: images per pass (each brings Q question rows and one description row);
    dtype: "auto" = float32 on CPU, the checkpoint's own dtype on GPU; or float32/bfloat16/float16;
    share_image: encode and prefill each image once for all its prompts (False: once per prompt)."""

    batch_size: int = 4
    max_new_tokens: int = 48
    dtype: str = "auto"
    revision: str | None = None
    share_image: bool = True

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
        from transformers import AutoModelForImageTextToText

        options = options or TransformersOptions()
        source = resolve_model_source(spec, MLLM_LABEL)
        processor = load_processor(source, options.revision)
        kwargs = {"revision": options.revision} if options.revision else {}
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                source.path_or_id, dtype=_torch_dtype(options.dtype, torch.device(device)), **kwargs
            )
        except (OSError, ValueError, KeyError) as exc:
            raise loading_error(MLLM_LABEL, source, exc) from exc
        revision = revision_of(source, getattr(model.config, "_commit_hash", None))
        self._attach(model, processor, source.spec, revision, device, options)

    @classmethod
    def from_model(
        cls,
        model,
        processor,
        model_id: str,
        device: str,
        options: TransformersOptions | None = None,
        revision: str | None = None,
    ) -> TransformersBackend:
        """The backend around a model already built in memory and a processor from `load_processor`
        (bench/stage1_gpu.py: a 7B VLM with random weights made on the GPU, no checkpoint to load)."""
        backend = cls.__new__(cls)
        backend._attach(model, processor, model_id, revision, device, options or TransformersOptions())
        return backend

    def _attach(
        self, model, processor, model_id: str, revision: str | None, device: str, options: TransformersOptions
    ) -> None:
        from transformers import GenerationConfig

        self.device = torch.device(device)
        self.batch_size = options.batch_size
        self.processor = processor
        self.model = model.to(self.device).eval()
        self.model_id = model_id
        self.revision = revision
        tokenizer = self.processor.tokenizer
        self.yes_no = YesNoTokens.from_tokenizer(tokenizer, model_id)
        self.decoding = DescriptionDecoding.of(model.generation_config, options.max_new_tokens)
        self.generation_config = GenerationConfig(
            max_new_tokens=self.decoding.max_new_tokens,
            do_sample=False,
            repetition_penalty=self.decoding.repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id,
        )
        self.first_step_config = GenerationConfig(
            max_new_tokens=1,
            do_sample=False,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=self.generation_config.eos_token_id,
        )
        parameters = inspect.signature(model.forward).parameters
        # Only the last position's logits are needed; models that can skip the rest say so.
        self._logits_to_keep = "logits_to_keep" in parameters
        # transformers 5 names the key/value cache `cache`, earlier releases `past_key_values`.
        self._cache_arg = "cache" if "cache" in parameters else "past_key_values"
        self._share_image = options.share_image and (self._cache_arg in parameters)
        self._splits: dict[tuple[str, ...], SharedPrefix | None] = {}

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
        split = self._shared_prefix(texts) if self._share_image else None
        if split is None:
            return self._answer_per_prompt(images, texts)
        return self._answer_shared(images, split)

    def _shared_prefix(self, texts: PromptTexts) -> SharedPrefix | None:
        key = (*texts.questions, texts.describe)
        if key not in self._splits:
            self._splits[key] = SharedPrefix.split(self.processor, list(key))
        return self._splits[key]

    def _answer_shared(self, images: list[Image.Image], split: SharedPrefix) -> tuple[np.ndarray, list[str]]:
        """The image prefix once per image, then every prompt's own text from a copy of its cache."""
        prefix = self._inputs(images, [split.prefix] * len(images))
        extra = {"logits_to_keep": 1} if self._logits_to_keep else {}
        with torch.inference_mode():
            output = self.model(**prefix, use_cache=True, **extra)
            cache = getattr(output, self._cache_arg)
            first_logits = []
            for suffix in split.suffixes[:-1]:
                inputs = self._continued(prefix, suffix, cache)
                first_logits.append(self.model.generate(**inputs, generation_config=self.first_step_config).logits[0])
            inputs = self._continued(prefix, split.suffixes[-1], cache)
            generated = self.model.generate(**inputs, generation_config=self.generation_config)
        yes_prob = np.stack([self.yes_no.from_logits(logits) for logits in first_logits], axis=1)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        descriptions = self.processor.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return yes_prob, [d.strip() for d in descriptions]

    def _continued(self, prefix, suffix: list[int], cache) -> dict:
        """generate's inputs for every row's prefix followed by `suffix`: the whole ids (for the
        positions and the repetition penalty), of which only the suffix is computed, over a copy of
        the prefix's cache (generate extends the cache it is given)."""
        ids = prefix["input_ids"]
        tail = torch.tensor(suffix, dtype=ids.dtype, device=ids.device).expand(ids.shape[0], -1)
        mask = prefix["attention_mask"]
        return {
            "input_ids": torch.cat([ids, tail], dim=1),
            "attention_mask": torch.cat([mask, torch.ones_like(tail, dtype=mask.dtype)], dim=1),
            self._cache_arg: copy.deepcopy(cache),
        }

    def _answer_per_prompt(self, images: list[Image.Image], texts: PromptTexts) -> tuple[np.ndarray, list[str]]:
        """Each prompt with its own copy of the image: Q + 1 vision passes and prefills per image."""
        num_questions = len(texts.questions)
        row_images = [im for im in images for _ in range(num_questions)]
        row_texts = texts.questions * len(images)
        yes_prob = self.yes_no.from_logits(self.first_token_logits(row_images, row_texts))
        return yes_prob.reshape(len(images), num_questions), self.describe(images, texts.describe)


@dataclass(frozen=True)
class SharedPrefix:
    """Prompts split into the text they share, up to and including the image placeholder, and each
    one's own token ids after it (the description's last)."""

    prefix: str
    suffixes: list[list[int]]

    @classmethod
    def split(cls, processor, prompts: list[str]) -> SharedPrefix | None:
        """None where the prompts do not all start with the same text and image, or where the
        tokenizer would not split a prompt into exactly its prefix's and its own tokens."""
        image_token = getattr(processor, "image_token", None)
        if not image_token or image_token not in prompts[0]:
            return None
        end = prompts[0].index(image_token) + len(image_token)
        prefix = prompts[0][:end]
        tokenizer = processor.tokenizer
        prefix_ids = tokenizer(prefix)["input_ids"]
        suffixes = []
        for prompt in prompts:
            if not prompt.startswith(prefix) or image_token in prompt[end:]:
                return None
            own = tokenizer(prompt[end:], add_special_tokens=False)["input_ids"]
            if not own or tokenizer(prompt)["input_ids"] != prefix_ids + own:
                return None
            suffixes.append(own)
        return cls(prefix, suffixes)
