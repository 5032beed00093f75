"""The MMCL loss's weights and temperature: the paper's values are the defaults (MMCL.md).

Torch-free, so the training config can nest it; `losses.mmcl_loss` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import NON_NEGATIVE, POSITIVE, check_fields, setting


@dataclass(frozen=True)
class MMCLLossConfig:
    lambda_refine: float = setting(
        0.2,
        flag=True,
        check=NON_NEGATIVE,  # weight of FRM's CE(S_R, y)
        help="Weight of FRM's refined-score loss ({default}).",
    )
    lambda_align: float = setting(
        0.1,
        flag=True,
        check=NON_NEGATIVE,  # weight of FAM's contrastive L_c
        help="Weight of FAM's contrastive loss ({default}).",
    )
    tau: float = setting(0.4, flag=True, check=POSITIVE, help="Contrastive temperature ({default}).")  # L_c's

    def __post_init__(self) -> None:
        check_fields(self)
