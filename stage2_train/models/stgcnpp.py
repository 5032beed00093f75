"""ST-GCN++ (Duan et al., "PYSKL", ACM MM 2022): ST-GCN with a learnable graph initialised from the
skeleton and a multi-branch temporal convolution, pyskl's strong simple baseline.

Our implementation of pyskl's `STGCN` as its `stgcn++` configs build it (`gcn_adaptive='init'`,
`gcn_with_res=True`, `tcn_type='mstcn'`) with `GCNHead`. Attribute names follow pyskl's
(`gcn.{i}.gcn.A`, `.tcn.branches`, ...) so a pyskl state dict maps by its prefixes alone
(`backbone.` dropped, `cls_head.fc_cls` -> `fc`: `backbones.from_official`). Initialisation is
PyTorch's default except the classifier (normal, std 0.01), as pyskl's.

The pyskl-style parts (`UnitTCN`, `MSTCN`, `pyskl_input`) serve ProtoGCN too.

Shapes: N batch, C channels, T frames, V joints, M persons; persons are folded into the batch.
"""

from __future__ import annotations

import torch
from torch import nn

from .backbone import Backbone, check_input
from .graph import Graph
from .model_config import STGCNPPConfig

# pyskl's mstcn branches: (kernel, dilation) temporal convolutions, a 3-frame max-pool, a 1x1.
MS_DILATIONS = (1, 2, 3, 4)
MS_KERNEL = 3


class UnitTCN(nn.Module):
    """(k x 1) temporal convolution, then BN (or none): pyskl's `unit_tcn`."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 9,
        stride: int = 1,
        dilation: int = 1,
        norm: bool = True,
    ) -> None:
        super().__init__()
        pad = (kernel_size + (kernel_size - 1) * (dilation - 1) - 1) // 2
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=(kernel_size, 1),
            padding=(pad, 0),
            stride=(stride, 1),
            dilation=(dilation, 1),
        )
        self.bn = nn.BatchNorm2d(out_channels) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def block_shortcut(residual: bool, in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """A block's residual: none, identity when shapes match, else a strided 1x1 `UnitTCN`."""
    if not residual:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return UnitTCN(in_channels, out_channels, kernel_size=1, stride=stride)


class MSTCN(nn.Module):
    """pyskl's `mstcn`: six branches (4 dilated 3-frame convolutions, a max-pool, a strided 1x1),
    each opening with a 1x1 bottleneck, concatenated (the first takes the remainder channels),
    then BN-ReLU-1x1 and BN."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        num_branches = len(MS_DILATIONS) + 2
        mid = out_channels // num_branches
        first = out_channels - mid * (num_branches - 1)  # branch 0 takes the remainder

        def opening(c: int) -> list[nn.Module]:
            return [nn.Conv2d(in_channels, c, kernel_size=1), nn.BatchNorm2d(c), nn.ReLU()]

        widths = [first] + [mid] * (num_branches - 1)
        branches: list[nn.Module] = [
            nn.Sequential(*opening(c), UnitTCN(c, c, MS_KERNEL, stride=stride, dilation=d, norm=False))
            for c, d in zip(widths, MS_DILATIONS)
        ]
        branches.append(
            nn.Sequential(*opening(mid), nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)))
        )
        branches.append(nn.Conv2d(in_channels, mid, kernel_size=1, stride=(stride, 1)))
        self.branches = nn.ModuleList(branches)
        self.transform = nn.Sequential(
            nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Conv2d(out_channels, out_channels, kernel_size=1)
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def branch_outputs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)  # N, C_out, T', V

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.transform(self.branch_outputs(x)))


class AdaptiveGCN(nn.Module):
    """pyskl's `unit_gcn` with adaptive='init', conv_pos='pre', with_res=True: one 1x1 conv to K
    subsets' channels, each aggregated over its learnable (V, V) topology (initialised from the
    skeleton), summed, BN, plus a (projected) residual, ReLU."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor) -> None:
        super().__init__()
        self.num_subsets = A.shape[0]
        self.A = nn.Parameter(A.clone())  # K, V, V
        self.conv = nn.Conv2d(in_channels, out_channels * self.num_subsets, kernel_size=1)
        self.down = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.num_subsets, -1, t, v)  # N, K, C_out, T, V
        y = torch.einsum("nkctv,kvw->nctw", y, self.A)  # N, C_out, T, V
        return self.act(self.bn(y) + self.down(x))


class STGCNBlock(nn.Module):
    """Graph convolution, multi-branch temporal convolution, block residual, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, A: torch.Tensor, stride: int = 1, residual: bool = True
    ) -> None:
        super().__init__()
        self.gcn = AdaptiveGCN(in_channels, out_channels, A)
        self.tcn = MSTCN(out_channels, out_channels, stride=stride)
        self.residual = block_shortcut(residual, in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


def pyskl_input(data_bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    """(N, C, T, V, M) -> (N*M, C, T, V) normalised per (joint, coordinate) over persons and time
    (pyskl's data_bn_type 'VC')."""
    N, C, T, V, M = x.shape
    x = x.permute(0, 4, 3, 1, 2).reshape(N * M, V * C, T)
    x = data_bn(x)
    return x.view(N * M, V, C, T).permute(0, 2, 3, 1)


def pool_persons(x: torch.Tensor, num_person: int) -> torch.Tensor:
    """(N*M, C, T, V) -> (N, C): the mean over time and joints, then persons (pyskl's GCNHead)."""
    return x.mean(dim=(2, 3)).view(-1, num_person, x.shape[1]).mean(dim=1)


class STGCNPP(Backbone):
    """ST-GCN++ classifier: (N, C, T, V, M) skeletons -> (N, num_class) logits."""

    def __init__(self, config: STGCNPPConfig) -> None:
        super().__init__()
        self.config = c = config
        A = torch.from_numpy(Graph(c.graph).A)  # 3, V, V: pyskl's 'spatial' partition
        self.data_bn = nn.BatchNorm1d(c.in_channels * c.num_point)
        blocks, in_ch = [], c.in_channels
        for i, (out_ch, stride) in enumerate(c.plan):
            # The first block has no residual (3 -> base channels).
            blocks.append(STGCNBlock(in_ch, out_ch, A, stride=stride, residual=i > 0))
            in_ch = out_ch
        self.gcn = nn.ModuleList(blocks)
        self.drop_out = nn.Dropout(c.drop_out)
        self.fc = nn.Linear(c.feature_dim, c.num_class)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_input("ST-GCN++", self.config, x)
        y = pyskl_input(self.data_bn, x)  # N*M, C, T, V
        for block in self.gcn:
            y = block(y)  # N*M, C', T', V
        feature = pool_persons(y, x.shape[4])  # N, C'
        return self.fc(self.drop_out(feature)), feature
