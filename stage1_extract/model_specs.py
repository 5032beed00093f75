"""Which models stage 1 runs, with which settings: the default models, the vLLM engine settings and the
batch sizes, torch-free (`mmcl extract --help` reads them without starting torch). The models
themselves are built in `featurize.load_models`."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from shared.errors import MMCLError

DEFAULT_MLLM = "Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_RGB_ENCODER = "efficientnet-lite0"
DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
MLLM_LABEL = "MLLM"  # what error messages call the model
BACKENDS = ("auto", "transformers", "vllm")

TRANSFORMERS_BATCH_SIZE = 16  # samples per model call with the transformers backend (ExtractConfig's default)
VLLM_BATCH_SIZE = 64  # images per vLLM `generate` call (each brings Q + 1 requests; vLLM schedules them)
VLLM_DTYPES = ("auto", "bfloat16", "float16", "float32")


@dataclass(frozen=True)
class VLLMEngine:
    """The engine settings `mmcl extract --vllm-*` exposes, with defaults that fit a 7B VLM
    (Qwen2.5-VL-7B, about 16 GB in bfloat16) on one GPU: the whole GPU for weights and KV cache, and
    a context far above a temporal image's need (a 1120x448 image is about 640 tokens, a prompt and
    answer under 200) yet far below the model's 128k, whose KV cache alone would not fit a 24 GB card.
    dtype: "auto" (the checkpoint's, bfloat16 for Qwen), bfloat16, float16 or float32."""

    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = 8192  # None: vLLM derives it from the model's config
    dtype: str = "auto"

    def __post_init__(self) -> None:
        if (
            self.tensor_parallel_size < 1
            or not 0 < self.gpu_memory_utilization <= 1
            or (self.max_model_len is not None and self.max_model_len < 1)
            or self.dtype not in VLLM_DTYPES
        ):
            raise MMCLError(
                f"{MLLM_LABEL} (vLLM): invalid engine settings {self}; tensor_parallel_size >= 1, "
                f"0 < gpu_memory_utilization <= 1, max_model_len >= 1, "
                f"dtype one of {', '.join(VLLM_DTYPES)}"
            )


def choose_backend(backend: str = "auto") -> str:
    """ "auto" -> "vllm" where CUDA is available and vllm is installed, else "transformers"."""
    if backend not in BACKENDS:
        raise MMCLError(f"{MLLM_LABEL} backend '{backend}': unknown; choose one of {', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "transformers"


@dataclass(frozen=True)
class ModelSpecs:
    mllm: str = DEFAULT_MLLM  # hub id or local directory
    backend: str = "auto"  # vllm | transformers | auto
    rgb_encoder: str = DEFAULT_RGB_ENCODER
    text_encoder: str = DEFAULT_TEXT_ENCODER
    prompts: Path | None = None  # None: the built-in prompts
    device: str = "auto"
    vllm: VLLMEngine = VLLMEngine()  # engine settings, used when the backend is vLLM

    def resolved_backend(self) -> str:
        return choose_backend(self.backend)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
