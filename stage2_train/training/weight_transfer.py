"""Fine-tuning from a checkpoint: which of a new model's tensors its weights initialise.

`plan_transfer` decides tensor by tensor (name and shape, heads whole or not at all) and says why
each other tensor starts fresh; `load_matching_weights` applies the plan (`mmcl train --init-from`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# Heads that load whole or not at all: a projection MLP whose first layer is sized by another
# feature width would otherwise keep its second layer, trained against a first it never saw.
WHOLE_HEADS = ("fam.", "frm.mlp.")


@dataclass(frozen=True)
class WeightTransfer:
    """Which of a model's tensors a checkpoint initialises, which keep their fresh
    initialisation (and why), and which checkpoint tensors the model has no place for."""

    loaded: list[str]
    fresh: dict[str, str]
    unused: list[str]

    def report(self, source: str | Path, shown: int = 3) -> list[str]:
        """A few lines for the user: counts per module, then the first `shown` re-initialised
        tensors and why (never one line per tensor: a new classifier is the usual case)."""
        modules = sorted({_module(k) for k in [*self.loaded, *self.fresh]})
        counts = ", ".join(
            f"{m} {sum(_module(k) == m for k in self.loaded)}/"
            f"{sum(_module(k) == m for k in [*self.loaded, *self.fresh])}"
            for m in modules
        )
        lines = [
            f"--init-from {source}: {len(self.loaded)} tensors loaded, {len(self.fresh)} re-initialised "
            f"(loaded/all per module: {counts})"
        ]
        fresh = list(self.fresh.items())
        lines += [f"  re-initialised {name}: {why}" for name, why in fresh[:shown]]
        if len(fresh) > shown:
            lines.append(f"  ... and {len(fresh) - shown} more re-initialised tensors")
        if self.unused:
            unused = sorted({_module(k) for k in self.unused})
            lines.append(
                f"  not used: {len(self.unused)} checkpoint tensors ({', '.join(unused)}) this model has no place for"
            )
        return lines


def _module(name: str) -> str:
    return name.split(".", 1)[0]


def plan_transfer(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> WeightTransfer:
    """Every target tensor whose name and shape the source has loads, except within a head of
    WHOLE_HEADS that does not match entirely. The classifier (backbone.fc) and FRM's class-wise
    vectors load only when the class count is the same, data_bn only with the same joints and
    persons, the graph adjacencies only with the same joints."""

    def mismatch(name: str) -> str | None:
        if name not in source:
            return "not in the checkpoint"
        a, b = tuple(source[name].shape), tuple(target[name].shape)
        return None if a == b else f"shape {a} in the checkpoint, {b} here"

    why = {name: mismatch(name) for name in target}
    for head in WHOLE_HEADS:
        members = [k for k in target if k.startswith(head)]
        broken = next((k for k in members if why[k]), None)
        for k in members if broken else ():
            why[k] = why[k] or f"{head[:-1]} loads whole and {broken} differs ({why[broken]})"
    return WeightTransfer(
        loaded=[k for k in target if why[k] is None],
        fresh={k: w for k, w in why.items() if w is not None},
        unused=[k for k in source if k not in target],
    )


def load_matching_weights(model: nn.Module, source: Mapping[str, torch.Tensor]) -> WeightTransfer:
    """Initialise `model` from a checkpoint's weights as `plan_transfer` decides; the other
    tensors keep the initialisation the model was built with (a re-initialised classifier)."""
    plan = plan_transfer(source, model.state_dict())
    model.load_state_dict({k: source[k] for k in plan.loaded}, strict=False)
    return plan
