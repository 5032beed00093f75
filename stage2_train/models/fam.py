"""FAM (feature alignment module): pull the skeleton feature towards the clip's RGB embedding.

The RGB embedding is cached by stage 1 (a frozen encoder), so FAM is only a projection MLP plus
a contrastive loss. The loss is GRACE's symmetric InfoNCE (Zhu et al., 2020): for an anchor u_i
with positive v_i,

    l(u_i, v_i) = -log  e^{s(u_i, v_i)/tau}
                        / ( sum_k e^{s(u_i, v_k)/tau} + sum_{k != i} e^{s(u_i, u_k)/tau} )

with s the cosine similarity: the denominator holds every cross-modal pair and the intra-modal
negatives. L = mean_i (l(g_i, c_i) + l(c_i, g_i)) / 2.
"""

from __future__ import annotations

import warnings
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .loss_config import MMCLLossConfig
from .model_config import FAMConfig


class FAM(nn.Module):
    """Projection in_dim -> hidden -> ReLU -> out_dim of the RGB embedding."""

    def __init__(self, config: FAMConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.Sequential(
            nn.Linear(config.in_dim, config.hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(config.hidden_dim, config.out_dim),
        )

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.proj(rgb)


def _one_side(u: torch.Tensor, v: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-row l(u_i, v_i) for L2-normalised u, v (B, D); computed as a stable log-sum-exp."""
    cross = u @ v.T / tau  # s(u_i, v_k)
    intra = u @ u.T / tau  # s(u_i, u_k); the self-pair is not a negative
    eye = torch.eye(u.shape[0], dtype=torch.bool, device=u.device)
    intra = intra.masked_fill(eye, float("-inf"))
    return torch.logsumexp(torch.cat([cross, intra], dim=1), dim=1) - cross.diagonal()


def grace_infonce(
    g: torch.Tensor, c: torch.Tensor, tau: float = MMCLLossConfig.tau, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Symmetric GRACE InfoNCE between paired rows of g and c (B, D).

    `mask` (B,) bool marks valid pairs; the others are dropped before the loss, so they are
    neither anchors nor negatives and get no gradient. No valid pair gives 0 (attached to the
    graph, so backward works); a single pair has no negatives and gives -log 1 = 0.
    """
    if g.shape != c.shape or g.dim() != 2:
        raise ValueError(
            f"grace_infonce: g and c must be equal (B, D) tensors, got {tuple(g.shape)} and {tuple(c.shape)}"
        )
    if mask is not None:
        g, c = g[mask], c[mask]
    if g.shape[0] == 0:
        return (g.sum() + c.sum()) * 0.0
    g, c = F.normalize(g, dim=1), F.normalize(c, dim=1)
    return 0.5 * (_one_side(g, c, tau) + _one_side(c, g, tau)).mean()


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate `x` (B_rank, ...) over all processes, keeping the gradient to every part.

    Identity unless torch.distributed is initialised with more than one process. Ranks may
    hold different batch sizes (rows are padded for the collective, then trimmed).
    Every rank then computes the same global loss; all_gather's backward sums the ranks'
    gradients, so each rank holds world_size x its share, and DDP's average over ranks gives
    exactly the gradient of the global loss.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    # The public autograd all_gather; 2.13 marks it deprecated in favour of a private module,
    # so we keep it and silence that notice.
    from torch.distributed.nn.functional import all_gather

    world = dist.get_world_size()
    size = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    sizes_list = [int(s.item()) for s in sizes]
    longest = max(sizes_list)
    if x.shape[0] < longest:
        pad = x.new_zeros((longest - x.shape[0], *x.shape[1:]))
        x = torch.cat([x, pad])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*all_gather is deprecated", category=FutureWarning)
        parts = all_gather(x)
    return torch.cat([part[:n] for part, n in zip(parts, sizes_list)])
