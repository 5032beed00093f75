"""FRM (feature refinement module): rescale classifier scores with weights from MLLM text features.

An MLP maps the clip's instructive text feature to a softmax over R learnable class-wise
vectors M_r (initialised to ones); their mix rescales the logits element-wise:
S_R = (sum_r w_r M_r) * S_M. Since the weights sum to one, S_R = S_M at initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from .model_config import FRMConfig


class FRM(nn.Module):
    def __init__(self, config: FRMConfig) -> None:
        super().__init__()
        self.config = config
        self.mlp = nn.Sequential(
            nn.Linear(config.text_dim, config.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden_dim, config.num_vectors),
        )
        self.vectors = nn.Parameter(torch.ones(config.num_vectors, config.num_class))  # M_r

    def weights(self, text: torch.Tensor) -> torch.Tensor:
        """(N, text_dim) -> (N, R) mixing weights w."""
        return self.mlp(text).softmax(dim=-1)

    def forward(self, logits: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """S_R (N, num_class) from S_M = logits (N, num_class) and text (N, text_dim)."""
        return (self.weights(text) @ self.vectors) * logits
