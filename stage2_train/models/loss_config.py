"""The MMCL loss's weights and temperature: the paper's values are the defaults (MMCL.md).

Torch-free, so the training config can nest it; `losses.mmcl_loss` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..settings import NON_NEGATIVE, POSITIVE


@dataclass(frozen=True)
class MMCLLossConfig:
    lambda_refine: float = field(default=0.2, metadata=NON_NEGATIVE)  # weight of FRM's CE(S_R, y)
    lambda_align: float = field(default=0.1, metadata=NON_NEGATIVE)  # weight of FAM's contrastive L_c
    tau: float = field(default=0.4, metadata=POSITIVE)  # L_c's temperature
