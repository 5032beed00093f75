"""The torch device a command runs on (`--device auto|cpu|cuda`; auto: the GPU when there is one)
and the precision it trains in (`--mixed-precision auto|no|fp16|bf16`)."""

from __future__ import annotations

from collections.abc import Callable

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


def resolve_mixed_precision(
    name: str, device: str | torch.device, native_bf16: Callable[[torch.device], bool] = has_native_bf16
) -> str:
    """auto: bf16 autocast on a CUDA GPU that computes bf16 natively (Ampere on), float32 ("no")
    everywhere else, CPUs included. On CPU bf16 stays an explicit choice: on real NW-UCLA it cost
    2.2 points of top-1 for a whole run 1.19x faster (README, "Precision"), and
    bench/bench_precision.py measures its speed on the machine at hand. `native_bf16` is the
    capability check (injectable, so the rule is testable without the hardware)."""
    if name != "auto":
        return name
    device = resolve_device(device) if isinstance(device, str) else device
    return "bf16" if device.type == "cuda" and native_bf16(device) else "no"
