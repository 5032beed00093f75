"""A diverged run stops before anything of the bad epoch is saved or reported."""

from __future__ import annotations

import math

import torch

from shared.errors import MMCLError

from .config import TrainConfig
from .work_dir import last_checkpoint


class Diverged(MMCLError):
    """Training produced a non-finite loss or non-finite weights."""


def check_finite(model: torch.nn.Module, metrics: dict[str, float], epoch: int, cfg: TrainConfig) -> None:
    """Stop before a diverged epoch is saved: a NaN model must never be checkpointed or reported."""
    bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if math.isfinite(metrics["loss"]) and not bad:
        return
    raise Diverged(
        f"training diverged in epoch {epoch}: loss {metrics['loss']:.4g}, {len(bad)} weight tensors non-finite"
        + (f" ({bad[0]}, ...)" if bad else "")
        + f"; nothing of epoch {epoch} is saved ({_saved_before(cfg, epoch)}). "
        f"Lower --lr (now {cfg.optim.lr:g}) or check the input data"
    )


def _saved_before(cfg: TrainConfig, epoch: int) -> str:
    last = last_checkpoint(cfg.work_dir)
    return f"{last} holds epoch {epoch - 1}" if last.exists() else "no checkpoint was written yet"
