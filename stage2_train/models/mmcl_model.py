"""The trainable MMCL model: CTR-GCN backbone plus the training-only FAM and FRM heads.

Only `skeleton_model()` (the backbone with its classifier) is exported and used at test time;
FRM can additionally refine scores zero-shot when text features exist for the test clips.
"""

from __future__ import annotations

import torch
from torch import nn

from shared.errors import MMCLError

from .ctrgcn import CTRGCN
from .fam import FAM
from .frm import FRM
from .model_config import MMCLModelConfig


class MMCLModel(nn.Module):
    def __init__(self, config: MMCLModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = CTRGCN(config.backbone)
        self.fam = FAM(config.fam) if config.fam is not None else None
        self.frm = FRM(config.frm) if config.frm is not None else None

    def forward(self, x: torch.Tensor, rgb: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> dict[str, torch.Tensor | None]:
        """x (N, C, T, V, M); rgb (N, rgb_dim) and text (N, text_dim) cached features or None.

        Returns logits S_M, feature g, rgb_proj c (None without FAM or rgb) and refined S_R
        (None without FRM or text). Rows without features should hold finite filler (zeros):
        the loss masks them out, but a NaN would still poison the heads' weight gradients.
        """
        logits, feature = self.backbone.forward_features(x)
        rgb_proj = self.fam(rgb) if self.fam is not None and rgb is not None else None
        refined = self.frm(logits, text) if self.frm is not None and text is not None else None
        return {"logits": logits, "feature": feature, "rgb_proj": rgb_proj, "refined": refined}

    def skeleton_model(self) -> CTRGCN:
        """The backbone and its classifier alone: what is exported and run at test time."""
        return self.backbone

    def refine(self, logits: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Zero-shot refinement S_R of given scores with the trained FRM."""
        if self.frm is None:
            raise MMCLError("refine: this model was trained without FRM (use_frm=False)")
        return self.frm(logits, text)
