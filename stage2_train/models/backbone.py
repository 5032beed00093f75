"""What every skeleton backbone gives MMCL: class logits and the pooled skeleton feature.

FAM aligns the feature (its width, `config.feature_dim`, sets FAM's output width) and FRM
rescales the logits, so co-learning attaches to any backbone through `forward_features`.
`forward` (logits only) is what is exported and run at test time. A backbone with a loss of its
own (ProtoGCN's class-specific contrastive loss) returns the tensor that loss reads from
`forward_train`; the loss's layers live apart (`backbones.BackboneSpec.loss`), training-only
like FAM and FRM, so exports never carry them.
"""

from __future__ import annotations

import torch
from torch import nn

from shared.errors import MMCLError


def check_input(model: str, config, x: torch.Tensor) -> None:
    """x must be (N, C, T, V, M) with the config's channels, joints and persons."""
    c = config
    if x.dim() != 5 or (x.shape[1], x.shape[3], x.shape[4]) != (c.in_channels, c.num_point, c.num_person):
        raise MMCLError(
            f"{model} expects input (N, C={c.in_channels}, T, V={c.num_point}, M={c.num_person}), got {tuple(x.shape)}"
        )


class Backbone(nn.Module):
    """A skeleton classifier: (N, C, T, V, M) -> logits (N, num_class) and feature (N, feature_dim)."""

    config: object  # the backbone's config (model_config.BackboneConfig)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, num_class), pooled feature (N, feature_dim))."""
        raise NotImplementedError

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(logits, feature, what the backbone's own loss reads, or None when it has none)."""
        logits, feature = self.forward_features(x)
        return logits, feature, None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]
