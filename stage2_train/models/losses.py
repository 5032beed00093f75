"""MMCL training loss: L = CE(S_M, y) + lambda_refine * CE(S_R, y) + lambda_align * L_c
(+ the backbone's own weighted loss, where it has one: ProtoGCN's contrastive loss).

The refinement and alignment terms use only the samples whose text / RGB features exist
(masks); a term with no valid sample is 0. The alignment term runs on the global batch
under multi-process training, so its negatives come from every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .fam import gather_with_grad, grace_infonce
from .loss_config import MMCLLossConfig


# the parts' names in metrics.jsonl, TensorBoard
LOSS_METRICS = ("loss", "loss_ce", "loss_refine", "loss_align", "loss_backbone")


@dataclass(frozen=True)
class MMCLLoss:
    """The loss and its parts, each a scalar tensor (shape ())."""

    total: torch.Tensor  # with grad: ce + lambda_refine * refine + lambda_align * align + backbone
    ce: torch.Tensor  # detached: CE(S_M, y)
    refine: torch.Tensor  # detached: CE(S_R, y) over the rows with text features; 0 without FRM
    align: torch.Tensor  # detached: FAM's contrastive L_c over the rows with RGB features; 0 without FAM
    backbone: torch.Tensor  # detached: the backbone's own weighted loss (ProtoGCN's); 0 for the others
    n_valid_text: torch.Tensor  # long: rows that entered `refine`
    n_valid_rgb: torch.Tensor  # long: rows that entered `align` (over the global batch with several processes)

    def metrics(self) -> dict[str, torch.Tensor]:
        """The parts under their LOSS_METRICS names, in that order."""
        return dict(zip(LOSS_METRICS, (self.total, self.ce, self.refine, self.align, self.backbone), strict=True))


def _all_valid(labels: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(labels, dtype=torch.bool)


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean CE over rows where mask is True; 0 (attached to the graph) when there are none."""
    per_row = F.cross_entropy(logits, labels, reduction="none")
    # Weighted rather than indexed: no host sync, and an empty mask gives 0 / 1 = 0.
    return (per_row * mask).sum() / mask.sum().clamp(min=1)


def mmcl_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    config: MMCLLossConfig = MMCLLossConfig(),
    *,
    refined: torch.Tensor | None = None,
    text_valid: torch.Tensor | None = None,
    feature: torch.Tensor | None = None,
    rgb_proj: torch.Tensor | None = None,
    rgb_valid: torch.Tensor | None = None,
    backbone_loss: torch.Tensor | None = None,
) -> MMCLLoss:
    """Total loss and its parts.

    logits: S_M (N, K); labels (N,) int; refined: S_R (N, K) or None (no FRM term);
    feature: skeleton feature g (N, D) and rgb_proj: FAM output c (N, D), or None (no FAM term);
    text_valid / rgb_valid: (N,) bool masks, None meaning all rows are valid;
    backbone_loss: the backbone's own loss, already weighted (`MMCLModel`), or None.

    Returns the MMCLLoss: `total` with grad, the parts detached, and the rows that entered each term.
    """
    ce = F.cross_entropy(logits, labels)
    zero = logits.new_zeros(())
    no_rows = torch.zeros((), dtype=torch.long, device=logits.device)

    refine, n_text = zero, no_rows
    if refined is not None:
        text_valid = _all_valid(labels) if text_valid is None else text_valid
        refine = masked_cross_entropy(refined, labels, text_valid)
        n_text = text_valid.sum()

    align, n_rgb = zero, no_rows
    if feature is not None and rgb_proj is not None:
        rgb_valid = _all_valid(labels) if rgb_valid is None else rgb_valid
        # One collective for the pair and its mask (the mask travels as a 0/1 column).
        packed = torch.cat([feature, rgb_proj, rgb_valid.to(feature.dtype)[:, None]], dim=1)
        packed = gather_with_grad(packed)
        d = feature.shape[1]
        g, c, valid = packed[:, :d], packed[:, d : 2 * d], packed[:, -1] > 0.5
        align = grace_infonce(g, c, config.tau, mask=valid)
        n_rgb = valid.sum()

    own = zero if backbone_loss is None else backbone_loss
    total = ce + config.lambda_refine * refine + config.lambda_align * align + own
    return MMCLLoss(
        total=total,
        ce=ce.detach(),
        refine=refine.detach(),
        align=align.detach(),
        backbone=own.detach(),
        n_valid_text=n_text,
        n_valid_rgb=n_rgb,
    )
