"""The optimiser and learning-rate schedule: SGD with Nesterov momentum, linear warm-up, then
step decay (CTR-GCN's and MMCL's reference schedule). Torch-free; `train.build_optimizer` applies it."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import MMCLError


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 110
    batch_size: int = 200  # the global batch, split over the processes
    test_batch_size: int | None = None  # None: batch_size
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-4
    warmup: int = 5  # epochs of linear warm-up
    steps: tuple[int, ...] = field(default=(90, 100))  # epochs where lr *= lr_decay
    lr_decay: float = 0.1

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
