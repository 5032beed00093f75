"""The MLLM interface that stage 1 asks about every temporal image, and the logic both backends share.

For each image the MLLM answers every yes/no question of `Prompts` as P(yes) and describes the action
once. P(yes) (see CONTRACT.md, "MLLM answers") is read from the first answer token: the probability
mass of the candidates whose text, stripped and lower-cased, is "yes", divided by that plus the mass
of "no"; NaN when neither appears. `YesNoTokens` computes which vocabulary ids count as yes/no, once,
for both backends, so they cannot drift apart.

The backends (mllm_transformers, mllm_vllm) build on this module; `mllm_factory.build_mllm` picks one.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from shared.errors import MMCLError
from stage1_extract.model_source import ModelSource, loading_error
from stage1_extract.model_specs import MLLM_LABEL
from stage1_extract.prompts import Prompts

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------- answers
@dataclass
class MLLMAnswer:
    """One image's answers: P(yes) per question (NaN where undetermined), the description, and the
    error that prevented answering (then yes_prob is all NaN and description empty)."""

    yes_prob: np.ndarray
    description: str
    error: str | None = None

    @classmethod
    def failed(cls, num_questions: int, error: str) -> MLLMAnswer:
        return cls(np.full(num_questions, np.nan, np.float32), "", error)


# ------------------------------------------------------------------------ how descriptions are decoded
@dataclass(frozen=True)
class DescriptionDecoding:
    """How both backends decode the description: greedy, at most `max_new_tokens`, with the
    checkpoint's repetition penalty (Qwen2.5-VL-Instruct's generation_config.json sets 1.05;
    transformers' `generate` and vLLM's SamplingParams define it the same way). Without this vLLM
    would ignore the checkpoint's setting that transformers applies, and the two would write
    different descriptions."""

    max_new_tokens: int
    repetition_penalty: float = 1.0

    @classmethod
    def of(cls, generation_config: Any, max_new_tokens: int) -> DescriptionDecoding:
        """From a checkpoint's transformers GenerationConfig (None: it has none)."""
        penalty = getattr(generation_config, "repetition_penalty", None)
        return cls(max_new_tokens, float(penalty) if penalty else 1.0)

    @classmethod
    def of_checkpoint(cls, source: ModelSource, revision: str | None, max_new_tokens: int) -> DescriptionDecoding:
        """From the checkpoint's generation_config.json (absent: no penalty)."""
        from transformers import GenerationConfig

        kwargs = {"revision": revision} if revision else {}
        try:
            config = GenerationConfig.from_pretrained(source.path_or_id, **kwargs)
        except OSError:  # the checkpoint has no generation_config.json
            config = None
        return cls.of(config, max_new_tokens)


# ------------------------------------------------------------------------------------- the P(yes) rule
@dataclass(frozen=True, eq=False)  # arrays: identity, not element-wise, equality
class YesNoTokens:
    """The vocabulary ids whose decoded text, stripped and lower-cased, is "yes" or "no"."""

    yes_ids: np.ndarray
    no_ids: np.ndarray
    _yes_set: frozenset[int] = field(init=False, repr=False, compare=False)
    _no_set: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_yes_set", frozenset(int(i) for i in self.yes_ids))
        object.__setattr__(self, "_no_set", frozenset(int(i) for i in self.no_ids))

    @classmethod
    def from_tokenizer(cls, tokenizer, model_id: str = "") -> YesNoTokens:
        """Decode every id on its own (spaces and word-start markers fall away with the strip)."""
        texts = tokenizer.batch_decode(
            [[i] for i in range(len(tokenizer))], skip_special_tokens=False, clean_up_tokenization_spaces=False
        )
        words = np.array([t.strip().lower() for t in texts], dtype=object)
        tokens = cls(np.flatnonzero(words == "yes"), np.flatnonzero(words == "no"))
        if tokens.yes_ids.size == 0 or tokens.no_ids.size == 0:
            raise MMCLError(
                f"{MLLM_LABEL} '{model_id}': its tokenizer has no token that decodes to "
                f"{'yes' if tokens.yes_ids.size == 0 else 'no'}, so P(yes) cannot be read from the first answer token"
            )
        return tokens

    def from_logits(self, logits: torch.Tensor) -> np.ndarray:
        """Dense rule: (B, V) first-step logits -> (B,) P(yes) over the full distribution.

        Done in log space: the softmax normaliser cancels in the ratio, and tiny probabilities
        cannot underflow to 0/0."""
        logits = logits.float()
        log_yes = torch.logsumexp(logits[:, torch.as_tensor(self.yes_ids, device=logits.device)], dim=-1)
        log_no = torch.logsumexp(logits[:, torch.as_tensor(self.no_ids, device=logits.device)], dim=-1)
        return torch.sigmoid(log_yes - log_no).cpu().numpy().astype(np.float32)

    def from_candidates(self, logprobs: Mapping[int, float]) -> float:
        """Sparse rule: {token id: log-probability} of the top first-token candidates -> P(yes), or
        NaN when no candidate is a yes or a no."""
        yes = sum(np.exp(lp) for tid, lp in logprobs.items() if tid in self._yes_set)
        no = sum(np.exp(lp) for tid, lp in logprobs.items() if tid in self._no_set)
        return float(yes / (yes + no)) if yes + no > 0 else float("nan")


# ------------------------------------------------------------------------------- processor and prompts
def image_only_processor_class(processor_class: type) -> type:
    """The processor class, minus its video processor: that one needs torchvision, which is absent
    from CPU installs, and stage 1 only ever sends images."""

    class ImageOnlyProcessor(processor_class):
        @classmethod
        def get_attributes(cls) -> list[str]:
            return [name for name in super().get_attributes() if "video" not in name]

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = processor_class.__name__
    return ImageOnlyProcessor


def load_config(source: ModelSource, revision: str | None = None):
    """The model's config: loaded first, so a model that is not there fails once, clearly."""
    from transformers import AutoConfig

    kwargs = {"revision": revision} if revision else {}
    try:
        return AutoConfig.from_pretrained(source.path_or_id, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise loading_error(MLLM_LABEL, source, exc) from exc


def _processor_class(model_type: str) -> type | None:
    """The transformers processor class registered for a model type, if any."""
    import transformers
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    name = PROCESSOR_MAPPING_NAMES.get(model_type)
    return getattr(transformers, name, None) if name else None


def load_processor(source: ModelSource, revision: str | None = None):
    """The model's processor (image processor + tokenizer + chat template), left-padding.

    AutoProcessor first; where it fails or comes back without an image processor (it can silently
    fall back to a bare tokenizer without torchvision), the model's processor class is built again
    without its video processor."""
    from transformers import AutoProcessor

    model_type = getattr(load_config(source, revision), "model_type", "")
    kwargs = {"revision": revision} if revision else {}
    try:
        processor = AutoProcessor.from_pretrained(source.path_or_id, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        log.debug("AutoProcessor failed for %s (%s); trying without the video processor", source.spec, exc)
        processor = None
    if getattr(processor, "image_processor", None) is None:
        try:
            processor_class = _processor_class(model_type)
            if processor_class is None:
                raise ValueError(f"no processor class is registered for model type '{model_type}'")
            processor = image_only_processor_class(processor_class).from_pretrained(source.path_or_id, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise loading_error(MLLM_LABEL, source, exc) from exc
    if getattr(processor, "image_processor", None) is None:
        raise MMCLError(f"{MLLM_LABEL}: {source.describe()} has no image processor; is it a vision-language model?")
    if getattr(processor, "chat_template", None) is None:
        raise MMCLError(f"{MLLM_LABEL}: {source.describe()} has no chat template (chat_template.jinja/.json)")
    tokenizer = processor.tokenizer
    tokenizer.padding_side = "left"  # batched decoding continues every row from its last real token
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor


def chat_prompt(processor, instruction: str, system: str | None) -> str:
    """One user turn holding the image and the instruction, rendered by the model's chat template,
    ending where the assistant's answer starts."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": [{"type": "text", "text": system}]})
    messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction}]})
    return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


@dataclass(frozen=True)
class PromptTexts:
    """The rendered prompt strings of one `Prompts`: one per question, and the description's."""

    questions: list[str]
    describe: str

    @classmethod
    def render(cls, processor, prompts: Prompts) -> PromptTexts:
        return cls(
            [chat_prompt(processor, q, prompts.system) for q in prompts.questions],
            chat_prompt(processor, prompts.describe, prompts.system),
        )


# ------------------------------------------------------------------------------------------ interface
class MLLMBackend(ABC):
    """Answers `Prompts` about images. Subclasses set `name`, `model_id`, `revision`, `processor`,
    `yes_no`, `batch_size` and implement `_answer_batch`."""

    name: ClassVar[str]
    model_id: str
    revision: str | None
    processor: Any
    yes_no: YesNoTokens
    batch_size: int

    def answer(self, images: Sequence[Image.Image], prompts: Prompts) -> list[MLLMAnswer]:
        """One `MLLMAnswer` per image, in order. Images go through the model `batch_size` at a time;
        a batch that fails is retried image by image, so one bad image costs only its own answer."""
        texts = PromptTexts.render(self.processor, prompts)
        rgb = [im.convert("RGB") for im in images]
        answers: list[MLLMAnswer] = []
        for start in range(0, len(rgb), self.batch_size):
            answers.extend(self._answer_guarded(rgb[start : start + self.batch_size], texts))
        return answers

    def _answer_guarded(self, images: list[Image.Image], texts: PromptTexts) -> list[MLLMAnswer]:
        try:
            yes_prob, descriptions = self._answer_batch(images, texts)
        except MMCLError:
            raise
        except (RuntimeError, ValueError) as exc:  # e.g. out of memory, an unusable image size
            if len(images) > 1:
                return [answer for im in images for answer in self._answer_guarded([im], texts)]
            log.warning("%s could not answer an image: %s", self.model_id, exc)
            return [MLLMAnswer.failed(len(texts.questions), f"{type(exc).__name__}: {exc}")]
        return [MLLMAnswer(yes_prob[i], descriptions[i]) for i in range(len(images))]

    @abstractmethod
    def _answer_batch(self, images: list[Image.Image], texts: PromptTexts) -> tuple[np.ndarray, list[str]]:
        """(B,) RGB images -> ((B, Q) float32 P(yes), B descriptions)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, revision={self.revision!r})"
