"""The optimiser and learning-rate schedule: SGD with Nesterov momentum, linear warm-up, then
step decay (CTR-GCN's and MMCL's reference schedule). Torch-free; `train.build_optimizer` applies it."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import MMCLError

from ..settings import FRACTION, NON_NEGATIVE, POSITIVE, between, bound


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = field(default=110, metadata=between(0, 100_000, "the recipes train 65 to 110"))
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
    steps: tuple[int, ...] = field(default=(90, 100),  # epochs where lr *= lr_decay
                                   metadata=bound(lambda v: min(v, default=0) >= 0, "epochs >= 0"))
    lr_decay: float = field(default=0.1, metadata=POSITIVE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(sorted(int(s) for s in self.steps)))
        if not (self.epochs >= 0 and self.batch_size > 0):
            raise MMCLError("training config: epochs >= 0 and batch_size > 0 are required")

    @property
    def eval_batch_size(self) -> int:
        return self.test_batch_size or self.batch_size

    def lr_factor(self, epoch: int) -> float:
        """Linear warm-up over `warmup` epochs, then x lr_decay at each step (CTR-GCN's schedule)."""
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        return self.lr_decay ** sum(epoch >= s for s in self.steps)
