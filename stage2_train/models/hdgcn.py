"""HD-GCN (Lee et al., ICCV 2023): hierarchically decomposed graph convolution.

Each graph convolution runs one branch per hierarchy level (`hierarchy.hierarchy_graph`: rings of
joints around a centre of mass): a 1x1 bottleneck, three graph aggregations over the level's
(identity, outward, inward) adjacencies and an EdgeConv over the k nearest joints in feature
space, concatenated on channels. Attention-guided hierarchy aggregation (AHA) weighs the levels
per channel from an EdgeConv over level summaries; the first unit sums them instead. The units
follow CTR-GCN's plan and temporal block (`ctrgcn.MultiScale_TemporalConv`).

Our implementation of the official `model/HDGCN.py` (Jho-Yonsei/HD-GCN). Attribute names follow
it (`l1`..`l10`, `gcn1.PA`, `conv_down`, `conv`, `aha`, ...); `backbones.from_official` maps an
official state dict (its temporal convolutions keep their bias apart: `...3.bias` (1, C, 1, 1) is
our `...3.conv.bias`, and it lists the last level's branches twice, as `conv_d`).

Shapes: N batch, C channels, L levels, T frames, V joints, M persons; persons fold into the batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .backbone import Backbone, check_input
from .ctrgcn import MultiScale_TemporalConv, bn_init, conv_init, shortcut, unit_tcn
from .hierarchy import hierarchy_graph, level_joints
from .model_config import UNIT_PLAN, HDGCNConfig

GCN_NEIGHBOURS = 5  # EdgeConv's k over joints in each graph convolution
AHA_NEIGHBOURS = 3  # EdgeConv's k over hierarchy levels in AHA


class EdgeConv(nn.Module):
    """DGCNN's edge convolution over points (N, C, P): for each point its k nearest points in
    feature space (itself included), [neighbour - point, point] -> 1x1 conv, BN, LeakyReLU 0.2,
    max over the k neighbours."""

    def __init__(self, in_channels: int, out_channels: int, k: int) -> None:
        super().__init__()
        self.k = k
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels * 2, out_channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(negative_slope=0.2),
        )
        conv_init(self.conv[0])
        bn_init(self.conv[1], 1)

    def neighbours(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, P) -> (N, P, k) indices of each point's k nearest points."""
        inner = -2 * torch.matmul(x.transpose(2, 1), x)  # N, P, P
        sq = torch.sum(x**2, dim=1, keepdim=True)  # N, 1, P
        negative_distance = -sq - inner - sq.transpose(2, 1)
        return negative_distance.topk(k=self.k, dim=-1)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, P) -> (N, C_out, P)."""
        n, c, p = x.shape
        idx = self.neighbours(x)  # N, P, k
        points = x.transpose(1, 2)  # N, P, C
        gathered = torch.gather(points, 1, idx.reshape(n, p * self.k, 1).expand(-1, -1, c))
        gathered = gathered.view(n, p, self.k, c)  # N, P, k, C
        centre = points.unsqueeze(2).expand(-1, -1, self.k, -1)
        edge = torch.cat((gathered - centre, centre), dim=3).permute(0, 3, 1, 2)  # N, 2C, P, k
        return self.conv(edge).max(dim=-1)[0]


class AHA(nn.Module):
    """Attention-guided hierarchy aggregation: (N, C, L, T, V) -> (N, C, T, V), a per-channel
    sigmoid weight for each level from an EdgeConv over the levels' pooled joints."""

    def __init__(self, channels: int, levels: list[list[int]]) -> None:
        super().__init__()
        inter = channels // 4
        self.levels = levels  # the joints of each level
        self.conv_down = nn.Sequential(
            nn.Conv2d(channels, inter, kernel_size=1), nn.BatchNorm2d(inter), nn.ReLU(inplace=True)
        )
        self.edge_conv = EdgeConv(inter, inter, k=min(AHA_NEIGHBOURS, len(levels)))
        self.aggregate = nn.Conv1d(inter, channels, kernel_size=1)
        conv_init(self.conv_down[0])
        bn_init(self.conv_down[1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, num_levels, _, _ = x.shape
        summary = self.conv_down(x.max(dim=-2)[0])  # N, C/4, L, V (max over time)
        per_level = torch.stack(
            [summary[:, :, i, joints].mean(dim=-1) for i, joints in enumerate(self.levels)], dim=2
        )  # N, C/4, L
        weights = torch.sigmoid(self.aggregate(self.edge_conv(per_level)))  # N, C, L
        return (x * weights.view(n, c, num_levels, 1, 1)).sum(dim=2)


class HDGraphConv(nn.Module):
    """HD-GCN's graph convolution ("HD_Gconv"): per level a bottleneck to C/4, three adjacency
    branches and an EdgeConv (C/4 each, concatenated to C); levels merged by AHA (or summed),
    BN (scale 1e-6: the unit starts near its residual), plus the (projected) input, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, A: torch.Tensor, levels: list[list[int]], attention: bool
    ) -> None:
        super().__init__()
        num_levels, num_subsets = A.shape[:2]
        inter = out_channels // (num_subsets + 1)
        self.PA = nn.Parameter(A.clone())  # L, 3, V, V
        self.conv_down = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, inter, kernel_size=1), nn.BatchNorm2d(inter), nn.ReLU(inplace=True))
            for _ in range(num_levels)
        )
        self.conv = nn.ModuleList(
            nn.ModuleList(
                [
                    *(
                        nn.Sequential(nn.Conv2d(inter, inter, kernel_size=1), nn.BatchNorm2d(inter))
                        for _ in range(num_subsets)
                    ),
                    EdgeConv(inter, inter, k=GCN_NEIGHBOURS),
                ]
            )
            for _ in range(num_levels)
        )
        self.aha = AHA(out_channels, levels) if attention else None
        self.down = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                conv_init(m)
            elif isinstance(m, nn.BatchNorm2d):
                bn_init(m, 1)
        bn_init(self.bn, 1e-6)

    def level(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Level i's branches: (N, C_in, T, V) -> (N, C_out, T, V)."""
        down = self.conv_down[i](x)  # N, C/4, T, V
        *graph_convs, edge_conv = self.conv[i]
        parts = [conv(torch.einsum("nctu,vu->nctv", down, self.PA[i, j])) for j, conv in enumerate(graph_convs)]
        t = down.shape[2]
        parts.append(edge_conv(down.mean(dim=2)).unsqueeze(2).expand(-1, -1, t, -1))  # over time-pooled joints
        return torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        levels = torch.stack([self.level(x, i) for i in range(len(self.conv))], dim=2)  # N, C, L, T, V
        y = self.aha(levels) if self.aha is not None else levels.sum(dim=2)
        return self.relu(self.bn(y) + self.down(x))


class HDGCNUnit(nn.Module):
    """HD graph convolution, CTR-GCN's multi-scale temporal convolution, (strided) shortcut, ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: torch.Tensor,
        levels: list[list[int]],
        stride: int = 1,
        residual: bool = True,
        attention: bool = True,
    ) -> None:
        super().__init__()
        self.gcn1 = HDGraphConv(in_channels, out_channels, A, levels, attention)
        self.tcn1 = MultiScale_TemporalConv(
            out_channels, out_channels, kernel_size=5, stride=stride, dilations=(1, 2), residual=False
        )
        self.relu = nn.ReLU(inplace=True)
        self.residual = shortcut(
            residual,
            in_channels,
            out_channels,
            stride,
            lambda: unit_tcn(in_channels, out_channels, kernel_size=1, stride=stride),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.tcn1(self.gcn1(x))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class HDGCN(Backbone):
    """HD-GCN classifier: (N, C, T, V, M) skeletons -> (N, num_class) logits."""

    def __init__(self, config: HDGCNConfig) -> None:
        super().__init__()
        self.config = c = config
        A = torch.from_numpy(hierarchy_graph(c.graph, c.com).astype("float32"))  # L, 3, V, V
        levels = level_joints(c.graph, c.com)
        self.data_bn = nn.BatchNorm1d(c.num_person * c.in_channels * c.num_point)
        bn_init(self.data_bn, 1)
        self.layer_names = tuple(f"l{i + 1}" for i in range(len(UNIT_PLAN)))
        in_ch = c.in_channels
        for i, (name, (mult, stride)) in enumerate(zip(self.layer_names, UNIT_PLAN)):
            out_ch = c.base_channel * mult
            # The first unit: no shortcut and no attention (levels summed), as the reference.
            self.add_module(name, HDGCNUnit(in_ch, out_ch, A, levels, stride=stride, residual=i > 0, attention=i > 0))
            in_ch = out_ch
        self.drop_out = nn.Dropout(c.drop_out)
        self.fc = nn.Linear(c.feature_dim, c.num_class)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / c.num_class))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_input("HD-GCN", self.config, x)
        N, C, T, V, M = x.shape
        y = self.data_bn(x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T))  # over (person, joint, coordinate)
        y = y.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        for name in self.layer_names:
            y = getattr(self, name)(y)  # N*M, C', T', V
        feature = y.reshape(N, M, y.shape[1], -1).mean(dim=(1, 3))  # N, C'
        return self.fc(self.drop_out(feature)), feature
