"""The optimiser and learning-rate schedule: SGD with Nesterov momentum, linear warm-up, then
step decay (CTR-GCN's and MMCL's reference schedule). Torch-free; `train.build_optimizer` applies it."""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import FRACTION, NON_NEGATIVE, POSITIVE, between, bound, check_fields, setting


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = setting(110, flag=True, recipe=True, check=between(0, 100_000, "the recipes train 65 to 110"))
    batch_size: int = setting(200, flag=True, recipe=True,
                              check=between(1, 1_000_000, "more samples than any dataset has"),
                              help="Global batch size (split over processes).")
    # None: batch_size
    test_batch_size: int | None = setting(None, flag=True,
                                          check=between(1, 1_000_000, "more samples than any dataset has"))
    lr: float = setting(0.1, flag=True, recipe=True, check=NON_NEGATIVE, help="Base learning rate.")
    momentum: float = setting(0.9, check=FRACTION)
    nesterov: bool = True
    weight_decay: float = setting(4e-4, flag=True, recipe=True, check=NON_NEGATIVE)
    warmup: int = setting(5, flag=True, recipe=True, check=between(0, 100_000, "at most the epochs allowed"),
                          help="Epochs of linear learning-rate warm-up.")
    steps: tuple[int, ...] = setting((90, 100), flag=True, recipe=True,  # epochs where lr *= lr_decay
                                     check=bound(lambda v: min(v, default=0) >= 0, "epochs >= 0"),
                                     help="Epochs where the learning rate drops x0.1, e.g. 90,100.")
    lr_decay: float = setting(0.1, check=POSITIVE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(sorted(int(s) for s in self.steps)))
        check_fields(self)

    @property
    def eval_batch_size(self) -> int:
        return self.test_batch_size or self.batch_size

    def lr_factor(self, epoch: int) -> float:
        """Linear warm-up over `warmup` epochs, then x lr_decay at each step (CTR-GCN's schedule)."""
        if epoch < self.warmup:
            return (epoch + 1) / self.warmup
        return self.lr_decay ** sum(epoch >= s for s in self.steps)
