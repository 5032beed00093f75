"""The trainable MMCL model: CTR-GCN backbone plus the training-only FAM and FRM heads.

Only `skeleton_model()` (the backbone with its classifier) is exported and used at test time;
FRM can additionally refine scores zero-shot when text features exist for the test clips.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

from shared.errors import MMCLError

from .ctrgcn import CTRGCN
from .fam import FAM
from .frm import FRM
from .model_config import MMCLModelConfig


@dataclass(init=False, eq=False)
class MMCLOutput(Mapping):
    """What `MMCLModel.forward` returns, Hugging Face style: typed fields that read as a mapping too
    (`out.logits` and `out["logits"]`), so callers and accelerate's float32 conversion of autocast
    outputs, which rebuilds a mapping as `type(out)(dict)`, both work."""

    logits: torch.Tensor  # (N, num_class) S_M: the backbone's class scores
    feature: torch.Tensor  # (N, feature_dim) g: the pooled skeleton feature FAM aligns
    rgb_proj: torch.Tensor | None = None  # (N, feature_dim) c: FAM's projection of rgb; None without FAM or rgb
    refined: torch.Tensor | None = None  # (N, num_class) S_R: FRM's refined scores; None without FRM or text

    def __init__(self, logits: torch.Tensor | Mapping[str, torch.Tensor | None],
                 feature: torch.Tensor | None = None, rgb_proj: torch.Tensor | None = None,
                 refined: torch.Tensor | None = None) -> None:
        if isinstance(logits, Mapping):  # a lone mapping holds every field (accelerate's rebuild)
            logits, feature, rgb_proj, refined = (logits[f.name] for f in fields(self))
        if feature is None:
            raise MMCLError("MMCLOutput: logits and feature are required")
        self.logits, self.feature, self.rgb_proj, self.refined = logits, feature, rgb_proj, refined

    def __getitem__(self, key: str) -> torch.Tensor | None:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


class MMCLModel(nn.Module):
    def __init__(self, config: MMCLModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = CTRGCN(config.backbone)
        self.fam = FAM(config.fam) if config.fam is not None else None
        self.frm = FRM(config.frm) if config.frm is not None else None

    def forward(self, x: torch.Tensor, rgb: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> MMCLOutput:
        """x (N, C, T, V, M); rgb (N, rgb_dim) and text (N, text_dim) cached features or None.

        Returns logits S_M, feature g, rgb_proj c (None without FAM or rgb) and refined S_R
        (None without FRM or text). Rows without features should hold finite filler (zeros):
        the loss masks them out, but a NaN would still poison the heads' weight gradients.
        """
        logits, feature = self.backbone.forward_features(x)
        rgb_proj = self.fam(rgb) if self.fam is not None and rgb is not None else None
        refined = self.frm(logits, text) if self.frm is not None and text is not None else None
        return MMCLOutput(logits=logits, feature=feature, rgb_proj=rgb_proj, refined=refined)

    def skeleton_model(self) -> CTRGCN:
        """The backbone and its classifier alone: what is exported and run at test time."""
        return self.backbone

    def refine(self, logits: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Zero-shot refinement S_R of given scores with the trained FRM."""
        if self.frm is None:
            raise MMCLError("refine: this model was trained without FRM (use_frm=False)")
        return self.frm(logits, text)
