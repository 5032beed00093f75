"""Mixed precision, held by the run: autocast around the model's forward with its floating outputs
back in float32, and a loss scaler for fp16 — what accelerate's own mixed precision does, with the
same device rules, through public APIs only.

accelerate keeps one precision per process (in its process-wide state), so a second run in the same
process with another precision (a notebook, the tests) would need accelerate's private reset. The
accelerator is therefore built in float32 and each run applies its own precision here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import convert_to_fp32, is_bf16_available


@dataclass(frozen=True)
class MixedPrecision:
    name: str  # "no", "bf16" or "fp16": the resolved --mixed-precision (config.finalize_config)
    device_type: str  # "cpu", "cuda", ...
    dtype: torch.dtype | None  # the forward's autocast dtype; None: float32
    scaler: torch.amp.GradScaler | None  # fp16 on an accelerator only: scales the loss so gradients survive

    @classmethod
    def for_device(cls, name: str, device: torch.device) -> MixedPrecision:
        """`name` on `device` as accelerate applies it: bf16 autocast where the device computes bf16
        (any CPU), fp16 autocast with a loss scaler on an accelerator (on the CPU fp16 is float32).
        ValueError where the device lacks the precision."""
        kind = device.type
        if name == "bf16" and kind not in ("cpu", "xpu", "hpu") and not is_bf16_available(True):
            raise ValueError("bf16 mixed precision requires a supported device.")  # accelerate's words
        if name == "fp16" and kind != "cpu":
            if not torch.amp.is_autocast_available(kind):
                raise ValueError(f"fp16 mixed precision is not supported on {kind!r}.")
            return cls(name, kind, torch.float16, torch.amp.GradScaler(kind))
        return cls(name, kind, torch.bfloat16 if name == "bf16" else None, None)

    def forward(self, model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        """model(*args, **kwargs), autocast to `dtype`, its floating outputs returned in float32."""
        if self.dtype is None:
            return model(*args, **kwargs)
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            out = model(*args, **kwargs)
        return convert_to_fp32(out)

    def backward(self, loss: torch.Tensor, acc: Accelerator) -> None:
        acc.backward(self.scaler.scale(loss) if self.scaler is not None else loss)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimiser step; with a scaler, skipped where the gradients overflowed (and the scale adapts)."""
        if self.scaler is None:
            optimizer.step()
            return
        self.scaler.step(optimizer)
        self.scaler.update()
