"""The optimiser and learning-rate schedule: SGD with Nesterov momentum, linear warm-up, then either
step decay per epoch (CTR-GCN's and MMCL's reference schedule) or cosine annealing per optimisation
step down to `min_lr` (HD-GCN's, and pyskl's for ST-GCN++ and ProtoGCN). Torch-free;
`train.build_optimizer` applies it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared.errors import MMCLError

from ..settings import FRACTION, NON_NEGATIVE, POSITIVE, between, bound

SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = field(default=110, metadata=between(0, 100_000, "the recipes train 16 to 150"))
    # the global batch, split over the processes
    batch_size: int = field(default=200, metadata=between(1, 1_000_000, "more samples than any dataset has"))
    # None: batch_size
    test_batch_size: int | None = field(default=None,
                                        metadata=between(1, 1_000_000, "more samples than any dataset has"))
    lr: float = field(default=0.1, metadata=NON_NEGATIVE)
    momentum: float = field(default=0.9, metadata=FRACTION)
    nesterov: bool = True
    weight_decay: float = field(default=4e-4, metadata=NON_NEGATIVE)
    # epochs of linear warm-up
    warmup: int = field(default=5, metadata=between(0, 100_000, "at most the epochs allowed"))
    steps: tuple[int, ...] = field(default=(90, 100),  # epochs where lr *= lr_decay (schedule "step")
                                   metadata=bound(lambda v: min(v, default=0) >= 0, "epochs >= 0"))
    lr_decay: float = field(default=0.1, metadata=POSITIVE)
    # after the warm-up: "step" (x lr_decay at `steps`, set each epoch) or "cosine" (set each
    # optimisation step, from lr down to min_lr at the end of the last epoch)
    schedule: str = field(default="step", metadata=bound(lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"))
    min_lr: float = field(default=0.0, metadata=NON_NEGATIVE)  # the cosine schedule's end (absolute)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(sorted(int(s) for s in self.steps)))
        if not (self.epochs >= 0 and self.batch_size > 0):
            raise MMCLError("training config: epochs >= 0 and batch_size > 0 are required")
        if self.schedule not in SCHEDULES:
            raise MMCLError(f"training config: schedule must be one of {', '.join(SCHEDULES)}")

    @property
    def eval_batch_size(self) -> int:
        return self.test_batch_size or self.batch_size

    @property
    def per_step(self) -> bool:
        """Whether the learning rate changes every optimisation step (cosine) or every epoch (step)."""
        return self.schedule == "cosine"

    def lr_factor(self, epoch: int) -> float:
        """Linear warm-up over `warmup` epochs, then x lr_decay at each step (CTR-GCN's schedule)."""
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        return self.lr_decay ** sum(epoch >= s for s in self.steps)

    def lr_at(self, iteration: int, steps_per_epoch: int) -> float:
        """The learning rate of optimisation step `iteration` (0-based over the run) of the cosine
        schedule: the warm-up's (epoch + 1) / warmup x lr through each warm-up epoch, then
        min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2 with t the steps since the warm-up and T those
        of the epochs after it (HD-GCN's `adjust_learning_rate`; mmcv's CosineAnnealing by
        iteration where there is no warm-up)."""
        epoch = iteration // steps_per_epoch
        if epoch < self.warmup:
            return self.lr * (epoch + 1) / self.warmup
        total = max(1, steps_per_epoch * (self.epochs - self.warmup))
        t = min(iteration - steps_per_epoch * self.warmup, total)
        return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * t / total))

    def lr_factor_at(self, iteration: int, steps_per_epoch: int) -> float:
        """lr_at as a factor on lr (what torch's LambdaLR multiplies the base rate by)."""
        return self.lr_at(iteration, steps_per_epoch) / self.lr if self.lr else 0.0
