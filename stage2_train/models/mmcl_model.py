"""The trainable MMCL model: a skeleton backbone (`backbones.BACKBONES`) plus the training-only
FAM and FRM heads and, where the backbone has one, its own training-only loss (ProtoGCN's).

Only `skeleton_model()` (the backbone with its classifier) is exported and used at test time;
FRM can additionally refine scores zero-shot when text features exist for the test clips.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

import torch
from torch import nn

from shared.errors import MMCLError

from .backbone import Backbone
from .backbones import build_backbone, build_backbone_loss
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
    backbone_loss: torch.Tensor | None = None  # () the backbone's own weighted loss; None without one or labels

    def __init__(
        self,
        logits: torch.Tensor | Mapping[str, torch.Tensor | None],
        feature: torch.Tensor | None = None,
        rgb_proj: torch.Tensor | None = None,
        refined: torch.Tensor | None = None,
        backbone_loss: torch.Tensor | None = None,
    ) -> None:
        if isinstance(logits, Mapping):  # a lone mapping holds every field (accelerate's rebuild)
            logits, feature, rgb_proj, refined, backbone_loss = (logits[f.name] for f in fields(self))
        if feature is None:
            raise MMCLError("MMCLOutput: logits and feature are required")
        self.logits, self.feature, self.rgb_proj, self.refined = logits, feature, rgb_proj, refined
        self.backbone_loss = backbone_loss

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
        self.backbone = build_backbone(config.backbone)
        self.backbone_loss = build_backbone_loss(config.backbone)
        self.fam = FAM(config.fam) if config.fam is not None else None
        self.frm = FRM(config.frm) if config.frm is not None else None

    def forward(
        self,
        x: torch.Tensor,
        rgb: torch.Tensor | None = None,
        text: torch.Tensor | None = None,
        label: torch.Tensor | None = None,
    ) -> MMCLOutput:
        """x (N, C, T, V, M); rgb (N, rgb_dim) and text (N, text_dim) cached features or None;
        label (N,) the classes, which the backbone's own loss needs (None: no such loss).

        Returns logits S_M, feature g, rgb_proj c (None without FAM or rgb), refined S_R
        (None without FRM or text) and backbone_loss (the backbone's weighted training loss, or
        None). Rows without features should hold finite filler (zeros): the loss masks them out,
        but a NaN would still poison the heads' weight gradients.
        """
        backbone_loss = None
        if self.backbone_loss is not None and label is not None:
            logits, feature, side = self.backbone.forward_train(x)
            backbone_loss = self.backbone_loss(side, label, logits)
        else:
            logits, feature = self.backbone.forward_features(x)
        rgb_proj = self.fam(rgb) if self.fam is not None and rgb is not None else None
        refined = self.frm(logits, text) if self.frm is not None and text is not None else None
        return MMCLOutput(
            logits=logits, feature=feature, rgb_proj=rgb_proj, refined=refined, backbone_loss=backbone_loss
        )

    def skeleton_model(self) -> Backbone:
        """The backbone and its classifier alone: what is exported and run at test time."""
        return self.backbone

    def refine(self, logits: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Zero-shot refinement S_R of given scores with the trained FRM."""
        if self.frm is None:
            raise MMCLError("refine: this model was trained without FRM (use_frm=False)")
        return self.frm(logits, text)
