"""The torch device a command runs on: `--device auto|cpu|cuda` (auto: the GPU when there is one)."""

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
