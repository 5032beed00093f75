"""CTR-GCN's own graph convolution forward (the authors' `model/ctrgcn.py`, `CTRGC.forward`),
for the benchmarks' reference loop: our network with its CTRGC modules computing as the
reference does. Same parameters, same maths; ours pools over time before conv1/conv2."""

from __future__ import annotations

from types import MethodType

import torch
from torch import nn

from stage2_train.models.ctrgcn import CTRGC


def reference_ctrgc_forward(self: CTRGC, x: torch.Tensor, A: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    x1, x2, x3 = self.conv1(x).mean(-2), self.conv2(x).mean(-2), self.conv3(x)
    x1 = torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))
    x1 = self.conv4(x1) * alpha + A.unsqueeze(0).unsqueeze(0)  # N, C, V, V
    return torch.einsum("ncuv,nctv->nctu", x1, x3)


def use_reference_ctrgc(model: nn.Module) -> nn.Module:
    """`model` with every CTRGC computing as the reference (in place)."""
    for m in model.modules():
        if isinstance(m, CTRGC):
            m.forward = MethodType(reference_ctrgc_forward, m)
    return model
