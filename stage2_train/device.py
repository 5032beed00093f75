"""The torch device a command runs on (`--device auto|cpu|cuda`; auto: the GPU when there is one)
and the precision it trains in (`--mixed-precision auto|no|fp16|bf16`)."""

from __future__ import annotations

import torch

from shared.errors import MMCLError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise MMCLError("--device cuda: no CUDA device is available (use --device cpu)")
    return torch.device(name)


def has_native_bf16(device: torch.device) -> bool:
    """bf16 matrix units: a CUDA GPU from Ampere on, or a CPU with AVX512-BF16 or AMX. Elsewhere
    bf16 is emulated and slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:  # torch.cpu's own probes (no public API names them)
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def resolve_mixed_precision(name: str, device: str) -> str:
    """auto: bf16 autocast where the device computes bf16 natively, else float32 ("no").
    bench/bench_train_step.py measured bf16 at about 1.9x float32 on an AVX512-BF16 CPU; it
    changes numerics (the weights and the loss stay float32)."""
    if name != "auto":
        return name
    return "bf16" if has_native_bf16(resolve_device(device)) else "no"
