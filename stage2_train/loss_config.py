"""The MMCL loss's weights and temperature: the paper's values are the defaults (MMCL.md).

Torch-free, so the training config can nest it; `losses.mmcl_loss` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MMCLLossConfig:
    lambda_refine: float = 0.2  # weight of FRM's CE(S_R, y)
    lambda_align: float = 0.1  # weight of FAM's contrastive L_c
    tau: float = 0.4  # L_c's temperature
