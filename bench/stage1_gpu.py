"""Stage 1's MLLM on a GPU without a hub: Qwen2.5-VL-7B-Instruct built from its published config with
RANDOM bf16 weights made on the GPU, driven through the transformers backend (TransformersBackend:
each image's prompt prefix, the image included, is encoded and prefilled once and shared by the
yes/no questions and the description) on temporal images of the real size (TemporalImageConfig's
default, K = 5 slots of 224 x 448) with the real prompts, a few batches of the real batch size.

Needs torch and transformers only (no vLLM, decord, PyAV or hub access): the tokenizer is the demo
model's (stage1_extract.demo.models), its ids moved so that Qwen's special tokens have Qwen's ids;
the frames are synthetic and cropped and stitched by the real temporal-image code.

Random weights answer noise and almost never stop early: every description runs to the cap the real
run sets (TransformersOptions.max_new_tokens), so the projected time is an upper bound on the
description's share. The projection counts the MLLM alone (no decoding, RGB or text encoder).

`--scale tiny` runs the same code with the tiny demo VLM on the CPU in seconds (the test suite).

Usage: python bench/stage1_gpu.py [--scale 7b|tiny] [--batches 4] [--batch-size 16]
Ends with `RESULT gpu-stage1 samples/s <x> (projected <h> h for NTU120 113,945 videos)`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

NTU120_VIDEOS = 113_945
QWEN_7B_PARAMETERS = 8_292_166_656  # Qwen2_5_VLForConditionalGeneration of QWEN25_VL_7B_CONFIG

# Qwen/Qwen2.5-VL-7B-Instruct's config.json, as published.
# fmt: off
QWEN25_VL_7B_CONFIG = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0,
    "bos_token_id": 151643, "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656,
    "hidden_act": "silu", "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944,
    "max_position_embeddings": 128000, "max_window_layers": 28, "model_type": "qwen2_5_vl",
    "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "transformers_version": "4.41.2", "use_cache": True, "use_sliding_window": False,
    "vision_config": {
        "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2,
        "spatial_patch_size": 14, "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2, "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 152064,
}
# fmt: on
# Its preprocessor_config.json's pixel bounds (patch 14, merge 2, temporal patch 2 and CLIP's mean and
# std are the image processor's defaults, as in the demo model).
QWEN25_VL_MIN_PIXELS, QWEN25_VL_MAX_PIXELS = 3136, 12845056
# Its generation_config.json sets repetition_penalty 1.05 (the backend decodes greedily with it).
QWEN25_VL_REPETITION_PENALTY = 1.05


# ------------------------------------------------------------------------------------------ the model
def qwen_7b_config():
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig.from_dict(copy.deepcopy(QWEN25_VL_7B_CONFIG))


def meta_parameter_count(config) -> int:
    """Parameters of the model `config` describes, built on the meta device (no memory, no init)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    return sum(p.numel() for p in model.parameters())


def with_qwen_token_ids(tokenizer, first_special: int):
    """The demo tokenizer with its ordinary tokens first, unused fillers up to `first_special`, and
    Qwen's special tokens from there in Qwen's order (151643 for the 7B: <|endoftext|> 151643 ...
    <|image_pad|> 151655), so a model with Qwen's config finds its image and stop tokens."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    from stage1_extract.demo.models import SPECIAL_TOKENS

    data = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = data["model"]["vocab"]
    ordinary = sorted((t for t in vocab if t not in SPECIAL_TOKENS), key=vocab.get)
    fillers = (f"<|unused_{i}|>" for i in range(len(ordinary), first_special))  # no merge makes them
    data["model"]["vocab"] = {t: i for i, t in enumerate([*ordinary, *fillers])}
    for token in data["added_tokens"]:
        token["id"] = first_special + SPECIAL_TOKENS.index(token["content"])
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(data)),
        eos_token=tokenizer.eos_token,
        pad_token=tokenizer.pad_token,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )


def generation_config(tokenizer):
    """The published generation settings the backend reads (stop tokens, repetition penalty)."""
    from transformers import GenerationConfig

    ids = tokenizer.convert_tokens_to_ids
    return GenerationConfig(
        bos_token_id=ids("<|endoftext|>"),
        pad_token_id=ids("<|endoftext|>"),
        eos_token_id=[ids("<|im_end|>"), ids("<|endoftext|>")],
        do_sample=False,
        repetition_penalty=QWEN25_VL_REPETITION_PENALTY,
    )


@dataclass(frozen=True)
class Scale:
    """One size of the benchmark: the model and where it runs. `batch_size` None: the real run's."""

    name: str
    device: str
    dtype: torch.dtype
    batches: int
    batch_size: int | None

    def tokenizer_and_config(self):
        from stage1_extract.demo.models import TinyQwenConfig, tiny_qwen_config, train_tokenizer

        tiny = train_tokenizer(TinyQwenConfig())
        if self.name == "tiny":
            return tiny, tiny_qwen_config(TinyQwenConfig(), tiny)
        config = qwen_7b_config()
        tokenizer = with_qwen_token_ids(tiny, QWEN25_VL_7B_CONFIG["bos_token_id"])
        return tokenizer, config

    def image_pixels(self) -> tuple[int, int]:
        from stage1_extract.demo.models import TinyQwenConfig

        tiny = TinyQwenConfig()
        return (
            (tiny.min_pixels, tiny.max_pixels) if self.name == "tiny" else (QWEN25_VL_MIN_PIXELS, QWEN25_VL_MAX_PIXELS)
        )


SCALES = {
    "7b": Scale("7b", "cuda", torch.bfloat16, batches=4, batch_size=None),
    "tiny": Scale("tiny", "cpu", torch.float32, batches=2, batch_size=2),
}


def check_token_ids(tokenizer, config) -> None:
    """The ids the model looks for are the tokenizer's (else the image would never be seen)."""
    ids = tokenizer.convert_tokens_to_ids
    pairs = {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }
    wrong = {k: (getattr(config, k), v) for k, v in pairs.items() if getattr(config, k) != v}
    if wrong or len(tokenizer) > config.text_config.vocab_size:
        raise SystemExit(
            f"tokenizer and model disagree: {wrong} (config, tokenizer); "
            f"{len(tokenizer)} tokens for a vocabulary of {config.text_config.vocab_size}"
        )


def write_model_folder(folder: Path, scale: Scale):
    """config.json, generation_config.json and the processor (no weights) in `folder`, so the
    processor is loaded by the real `load_processor`; returns the config and generation config."""
    from stage1_extract.demo.models import TinyQwenConfig, build_processor, save_processor

    tokenizer, config = scale.tokenizer_and_config()
    check_token_ids(tokenizer, config)
    generation = generation_config(tokenizer)
    min_pixels, max_pixels = scale.image_pixels()
    config.save_pretrained(folder)
    generation.save_pretrained(folder)
    save_processor(build_processor(TinyQwenConfig(min_pixels=min_pixels, max_pixels=max_pixels), tokenizer), folder)
    return config, generation


def random_model(config, generation, scale: Scale):
    """The model with random weights, made on the scale's device in its dtype (no copy, no load)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(scale.device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=scale.dtype)
    model.generation_config = generation
    return model.eval()


# ----------------------------------------------------------------------------------------- the images
def temporal_images(count: int, seed: int = 0) -> list:
    """`count` temporal images of the real size: K synthetic 1920x1080 frames per sample (one noise
    frame shifted per frame), each cropped to a moving person's colour-coordinate box and stitched
    by stage1_extract.temporal_image, as extraction makes them from decoded video."""
    from stage1_extract.temporal_image import TemporalImageConfig, from_frames

    config, size = TemporalImageConfig(), (1920, 1080)
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    images = []
    for _ in range(count):
        shifts = rng.integers(0, 400, config.frames)
        frames = np.stack([np.roll(base, int(s), axis=1) for s in shifts])
        centre = rng.uniform((500, 300), (1400, 700)) + np.linspace(0, 200, config.frames)[:, None]
        joints = centre[:, None, None, :] + rng.normal(0, 120, (config.frames, 1, 25, 2))  # (K, M, V, 2)
        skeleton = {"frame_index": np.arange(config.frames), "color_xy": joints.astype(np.float32)}
        images.append(from_frames(frames, np.arange(config.frames), skeleton, size, config).image)
    return images


# ---------------------------------------------------------------------------------------- the timing
@dataclass
class Phases:
    """Seconds per named phase, synchronised with the device so GPU work is counted where it runs."""

    device: torch.device
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def time(self, name: str):
        sync(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            sync(self.device)
            self.seconds[name] += time.perf_counter() - start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


PREFILL, QUESTIONS, DESCRIPTION = "vision + image-prompt prefill", "questions (first token each)", "description"


class TimedModel:
    """The backend's model, its calls timed by phase: the forward is the shared prefix (vision
    tower and prefill), a one-token `generate` a question, any other `generate` the description
    (whose decoding steps are kept: with random weights they should reach the cap)."""

    def __init__(self, model, phases: Phases):
        self._model, self.phases = model, phases
        self.description_steps: list[int] = []

    def __call__(self, *args, **kwargs):
        with self.phases.time(PREFILL):
            return self._model(*args, **kwargs)

    def generate(self, *args, generation_config, **kwargs):
        name = QUESTIONS if generation_config.max_new_tokens == 1 else DESCRIPTION
        with self.phases.time(name):
            out = self._model.generate(*args, generation_config=generation_config, **kwargs)
        if name == DESCRIPTION:
            self.description_steps.append(out.shape[1] - kwargs["input_ids"].shape[1])
        return out

    def __getattr__(self, name):
        return getattr(self._model, name)


@dataclass(frozen=True)
class PromptTokens:
    """Tokens per sample: the shared image prompt (prefilled once), of which image tokens, each
    prompt's own text after it, and the description's cap."""

    prefix: int
    image: int
    questions: list[int]
    describe: int
    cap: int  # new description tokens at most

    @classmethod
    def count(cls, backend, prompts, image) -> PromptTokens:
        from stage1_extract.mllm_backend import PromptTexts
        from stage1_extract.mllm_transformers import SharedPrefix

        texts = PromptTexts.render(backend.processor, prompts)
        split = SharedPrefix.split(backend.processor, [*texts.questions, texts.describe])
        if split is None:
            raise SystemExit(
                "the prompts do not share their image prefix: the backend would encode "
                "each image once per prompt, which is not the path this benchmark measures"
            )
        ids = backend.processor(text=[split.prefix], images=[image], return_tensors="pt")["input_ids"][0]
        image_id = backend.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        return cls(
            len(ids),
            int((ids == image_id).sum()),
            [len(s) for s in split.suffixes[:-1]],
            len(split.suffixes[-1]),
            backend.decoding.max_new_tokens,
        )


# -------------------------------------------------------------------------------------------- the run
def build_backend(scale: Scale, folder: Path, phases: Phases):
    from stage1_extract.mllm_backend import load_processor
    from stage1_extract.mllm_transformers import TransformersBackend, TransformersOptions
    from stage1_extract.model_source import resolve_model_source
    from stage1_extract.model_specs import MLLM_LABEL, TRANSFORMERS_BATCH_SIZE

    with phases.time("config, tokenizer, processor"):
        config, generation = write_model_folder(folder, scale)
        processor = load_processor(resolve_model_source(str(folder), MLLM_LABEL))
    with phases.time("random weights on the device"):
        model = random_model(config, generation, scale)
    options = TransformersOptions(batch_size=scale.batch_size or TRANSFORMERS_BATCH_SIZE)
    with phases.time("backend (yes/no token scan)"):
        backend = TransformersBackend.from_model(model, processor, f"random {scale.name}", scale.device, options)
    backend.model = TimedModel(backend.model, phases)
    return backend, sum(p.numel() for p in model.parameters())


def answer_batches(backend, prompts, images: list, batches: int) -> list:
    """The answers of `batches` model calls of `backend.batch_size` images each."""
    size = backend.batch_size
    answers = []
    for start in range(0, batches * size, size):
        answers += backend.answer(images[start : start + size], prompts)
    return answers


def run(scale: Scale) -> int:
    from stage1_extract.prompts import load_prompts

    device = torch.device(scale.device)
    setup, timed = Phases(device), Phases(device)
    with tempfile.TemporaryDirectory() as tmp:
        backend, parameters = build_backend(scale, Path(tmp), setup)
    batch = backend.batch_size
    with setup.time("temporal images"):
        images = temporal_images(batch * (scale.batches + 1))
    prompts = load_prompts()
    tokens = PromptTokens.count(backend, prompts, images[0])
    print(
        f"stage 1 ({scale.name}): {parameters:,} parameters, {scale.dtype}, {device}; batch {batch}, "
        f"image {images[0].size[0]}x{images[0].size[1]}: image prompt {tokens.prefix} tokens "
        f"({tokens.image} image tokens), questions {tokens.questions} tokens, description "
        f"{tokens.describe} + up to {tokens.cap} new",
        flush=True,
    )
    backend.model.phases = Phases(device)  # the warm-up's own phases are not reported
    with setup.time("warm-up batch"):
        answer_batches(backend, prompts, images[:batch], 1)
    backend.model.phases, backend.model.description_steps = timed, []
    start = time.perf_counter()
    answers = answer_batches(backend, prompts, images[batch:], scale.batches)
    elapsed = time.perf_counter() - start
    return report(scale, setup, timed, answers, tokens, elapsed, backend.model.description_steps)


def report(
    scale: Scale, setup: Phases, timed: Phases, answers: list, tokens: PromptTokens, elapsed: float, steps: list[int]
) -> int:
    for name, seconds in setup.seconds.items():
        print(f"  {name:32s} {seconds:7.2f} s")
    samples = len(answers)
    other = elapsed - sum(timed.seconds.values())
    for name, seconds in [*timed.seconds.items(), ("processor, cache copies, P(yes)", other)]:
        print(f"  {name:32s} {seconds:7.2f} s  ({100 * seconds / elapsed:4.1f} % of {scale.batches} timed batches)")
    rate = samples / elapsed
    hours = NTU120_VIDEOS / rate / 3600
    failed = [a.error for a in answers if a.error is not None or not np.isfinite(a.yes_prob).all()]
    print(
        f"  {samples} samples in {elapsed:.2f} s: {rate:.2f} samples/s, image-prompt tokens/s "
        f"{rate * tokens.prefix:,.0f}; answers {'ok' if not failed else f'FAILED {len(failed)}: {failed[:2]}'}; "
        f"description decoding steps per batch {min(steps)}-{max(steps)}"
    )
    print(
        f"  random weights: descriptions run to the cap the real run sets ({tokens.cap} new tokens), so the "
        f"projection is an upper bound on description time; it counts the MLLM alone (no decoding, no "
        f"RGB or text encoder)"
    )
    print(f"RESULT gpu-stage1 samples/s {rate:.2f} (projected {hours:.1f} h for NTU120 {NTU120_VIDEOS:,} videos)")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default="7b",
        help="7b: the published Qwen2.5-VL-7B on CUDA; tiny: the demo VLM on the CPU",
    )
    parser.add_argument("--batches", type=int, help="timed batches (after one warm-up batch)")
    parser.add_argument("--batch-size", type=int, help="images per model call (default: the real run's)")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    scale = replace(scale, batches=args.batches or scale.batches, batch_size=args.batch_size or scale.batch_size)
    if scale.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: run with --scale tiny for the CPU smoke test")
        return 2
    return run(scale)


if __name__ == "__main__":
    sys.exit(main())
