"""The optimiser and learning-rate schedule: SGD with Nesterov momentum, linear warm-up, then either
step decay per epoch (CTR-GCN's and MMCL's reference schedule) or cosine annealing per optimisation
step down to `min_lr` (HD-GCN's, and pyskl's for ST-GCN++ and ProtoGCN). Torch-free;
`train.build_optimizer` applies it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..settings import FRACTION, NON_NEGATIVE, POSITIVE, between, bound, check_fields, setting

SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = setting(110, flag=True, recipe=True, check=between(0, 100_000, "the recipes train 16 to 150"))
    batch_size: int = setting(
        200,
        flag=True,
        recipe=True,
        check=between(1, 1_000_000, "more samples than any dataset has"),
        help="Global batch size (split over processes).",
    )
    # None: batch_size
    test_batch_size: int | None = setting(
        None, flag=True, check=between(1, 1_000_000, "more samples than any dataset has")
    )
    lr: float = setting(0.1, flag=True, recipe=True, check=NON_NEGATIVE, help="Base learning rate.")
    momentum: float = setting(0.9, check=FRACTION)
    nesterov: bool = True
    weight_decay: float = setting(4e-4, flag=True, recipe=True, check=NON_NEGATIVE)
    warmup: int = setting(
        5,
        flag=True,
        recipe=True,
        check=between(0, 100_000, "at most the epochs allowed"),
        help="Epochs of linear learning-rate warm-up.",
    )
    steps: tuple[int, ...] = setting(
        (90, 100),
        flag=True,
        recipe=True,  # epochs where lr *= lr_decay
        check=bound(lambda v: min(v, default=0) >= 0, "epochs >= 0"),
        help="Epochs where the learning rate drops x0.1, e.g. 90,100 (--schedule step).",
    )
    lr_decay: float = setting(0.1, check=POSITIVE)
    schedule: str = setting(
        "step",
        flag=True,
        recipe=True,
        fixed_on_resume=True,
        choices=SCHEDULES,
        help="After the warm-up: step (x0.1 at --steps, set each epoch; mmcl, ctrgcn) or cosine (set each "
        "optimisation step, down to --min-lr at the end; hdgcn, stgcnpp, protogcn).",
    )
    min_lr: float = setting(
        0.0,
        flag=True,
        recipe=True,
        check=NON_NEGATIVE,  # the cosine schedule's end (absolute)
        help="Where --schedule cosine ends (hdgcn 1e-4; stgcnpp, protogcn 0).",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(sorted(int(s) for s in self.steps)))
        check_fields(self)

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
