"""CTR-GCN (Chen et al., ICCV 2021): channel-wise topology refinement graph convolution.

An independent implementation equal to the authors' `model/ctrgcn.py` in architecture, parameter
count and initialisation. Block and attribute names follow the reference (`unit_gcn`, `PA`,
`l1`..`l10`, ...) so that its `state_dict` keys match and published checkpoints load as-is.

Shapes: N batch, C channels, T frames, V joints, M persons. Persons are folded into the batch
(N*M) for the graph/temporal layers and averaged at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .backbone import Backbone, check_input
from .graph import Graph
from .model_config import UNIT_PLAN, CTRGCNConfig

# --- initialisation (as the reference) -------------------------------------------------------


def conv_init(conv: nn.Conv2d) -> None:
    nn.init.kaiming_normal_(conv.weight, mode="fan_out")
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


def bn_init(bn: nn.modules.batchnorm._BatchNorm, scale: float) -> None:
    nn.init.constant_(bn.weight, scale)
    nn.init.zeros_(bn.bias)


def tcn_init(module: nn.Module) -> None:
    """The reference's `weights_init` for the multi-scale TCN: BN scales jittered around 1."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            conv_init(m)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# --- temporal blocks --------------------------------------------------------------------------


class TemporalConv(nn.Module):
    """(k x 1) convolution over time with 'same' padding for any dilation, then BN."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        pad = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size=(kernel_size, 1),
            padding=(pad, 0),
            stride=(stride, 1),
            dilation=(dilation, 1),
        )
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def shortcut(
    enabled: bool, in_channels: int, out_channels: int, stride: int, projection: Callable[[], nn.Module]
) -> nn.Module | None:
    """The residual branch as the reference builds it: none, identity when shapes match, else
    `projection()` (a strided 1x1 conv + BN)."""
    if not enabled:
        return None
    if in_channels == out_channels and stride == 1:
        return nn.Identity()
    return projection()


class MultiScale_TemporalConv(nn.Module):  # noqa: N801 - reference name, keeps checkpoint keys
    """Parallel branches concatenated on channels: one dilated temporal conv per dilation,
    a 3-frame max-pool and a strided 1x1 conv (each branch opens with a 1x1 bottleneck)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 5,
        stride: int = 1,
        dilations: tuple[int, ...] = (1, 2),
        residual: bool = True,
        residual_kernel_size: int = 1,
    ) -> None:
        super().__init__()
        num_branches = len(dilations) + 2
        if out_channels % num_branches:
            raise ValueError(f"out_channels={out_channels} not divisible by {num_branches} branches")
        mid = out_channels // num_branches

        def bottleneck() -> list[nn.Module]:
            return [nn.Conv2d(in_channels, mid, kernel_size=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True)]

        branches = [
            nn.Sequential(*bottleneck(), TemporalConv(mid, mid, kernel_size, stride, dilation))
            for dilation in dilations
        ]
        branches.append(
            nn.Sequential(
                *bottleneck(),
                nn.MaxPool2d(kernel_size=(3, 1), stride=(stride, 1), padding=(1, 0)),
                nn.BatchNorm2d(mid),
            )
        )
        branches.append(
            nn.Sequential(
                nn.Conv2d(in_channels, mid, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(mid),
            )
        )
        self.branches = nn.ModuleList(branches)

        self.residual = shortcut(
            residual,
            in_channels,
            out_channels,
            stride,
            lambda: TemporalConv(in_channels, out_channels, residual_kernel_size, stride),
        )
        tcn_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([branch(x) for branch in self.branches], dim=1)
        return out if self.residual is None else out + self.residual(x)


class unit_tcn(nn.Module):  # noqa: N801 - reference name
    """Strided (k x 1) conv + BN; used as the 1x1 shortcut of a TCN-GCN unit."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 9, stride: int = 1) -> None:
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=(kernel_size, 1), padding=(pad, 0), stride=(stride, 1)
        )
        self.bn = nn.BatchNorm2d(out_channels)
        conv_init(self.conv)
        bn_init(self.bn, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


# --- graph blocks -----------------------------------------------------------------------------


class CTRGC(nn.Module):
    """Channel-wise topology refinement graph convolution for one adjacency subset.

    Each output channel gets its own (V, V) topology: the shared A plus alpha times a
    channel-specific refinement built from pairwise differences of time-pooled joint embeddings.
    """

    def __init__(self, in_channels: int, out_channels: int, rel_reduction: int = 8) -> None:
        super().__init__()
        # Raw coordinates (3 or 9 channels) are too narrow to reduce; the reference fixes 8.
        rel_channels = 8 if in_channels in (3, 9) else in_channels // rel_reduction
        self.conv1 = nn.Conv2d(in_channels, rel_channels, kernel_size=1)
        self.conv2 = nn.Conv2d(in_channels, rel_channels, kernel_size=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.conv4 = nn.Conv2d(rel_channels, out_channels, kernel_size=1)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            conv_init(conv)

    def forward(self, x: torch.Tensor, A: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        # The reference computes conv1(x).mean(-2): a 1x1 conv is affine, so pooling over time
        # first is the same maths on T times fewer positions (5 % of a training step).
        pooled = x.mean(-2, keepdim=True)  # N, C_in, 1, V
        q = self.conv1(pooled).squeeze(-2)  # N, R, V
        k = self.conv2(pooled).squeeze(-2)  # N, R, V
        v = self.conv3(x)  # N, C, T, V
        rel = torch.tanh(q.unsqueeze(-1) - k.unsqueeze(-2))  # N, R, V, V
        topology = self.conv4(rel) * alpha + A  # N, C, V, V
        return torch.einsum("ncuv,nctv->nctu", topology, v)


class unit_gcn(nn.Module):  # noqa: N801 - reference name
    """Sum of CTRGCs over the adjacency subsets, BN, residual, ReLU."""

    def __init__(
        self, in_channels: int, out_channels: int, A: torch.Tensor, adaptive: bool = True, residual: bool = True
    ) -> None:
        super().__init__()
        self.adaptive = adaptive
        self.convs = nn.ModuleList(CTRGC(in_channels, out_channels) for _ in range(A.shape[0]))

        self.down: nn.Module | None
        if not residual:
            self.down = None
        elif in_channels == out_channels:
            self.down = nn.Identity()
        else:
            self.down = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
            conv_init(self.down[0])
            bn_init(self.down[1], 1)

        if adaptive:
            self.PA = nn.Parameter(A.clone())
        else:
            # Not persistent: the reference keeps the fixed A out of its state_dict.
            self.register_buffer("A", A.clone(), persistent=False)
        # One refinement strength shared by all subsets; zero so training starts from A alone.
        self.alpha = nn.Parameter(torch.zeros(1))
        self.bn = nn.BatchNorm2d(out_channels)
        # Near-zero BN scale: each unit starts close to its residual path.
        bn_init(self.bn, 1e-6)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        A = self.PA if self.adaptive else self.A
        y = sum(conv(x, A[i], self.alpha) for i, conv in enumerate(self.convs))
        y = self.bn(y)
        if self.down is not None:
            y = y + self.down(x)
        return self.relu(y)


class TCN_GCN_unit(nn.Module):  # noqa: N801 - reference name
    """Graph conv, then multi-scale temporal conv, plus a (strided) shortcut."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: torch.Tensor,
        stride: int = 1,
        residual: bool = True,
        adaptive: bool = True,
        kernel_size: int = 5,
        dilations: tuple[int, ...] = (1, 2),
    ) -> None:
        super().__init__()
        self.gcn1 = unit_gcn(in_channels, out_channels, A, adaptive=adaptive)
        self.tcn1 = MultiScale_TemporalConv(
            out_channels, out_channels, kernel_size=kernel_size, stride=stride, dilations=dilations, residual=False
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


# --- model ------------------------------------------------------------------------------------


class CTRGCN(Backbone):
    """CTR-GCN classifier: (N, C, T, V, M) skeletons -> (N, num_class) logits."""

    def __init__(self, config: CTRGCNConfig) -> None:
        super().__init__()
        self.config = config
        A = torch.from_numpy(Graph(config.graph, config.graph_mode).A)
        c = config
        # Normalise each (person, joint, coordinate) over the batch and time: raw coordinates
        # have very different ranges per joint.
        self.data_bn = nn.BatchNorm1d(c.num_person * c.in_channels * c.num_point)
        bn_init(self.data_bn, 1)

        self.layer_names: tuple[str, ...] = tuple(f"l{i + 1}" for i in range(len(UNIT_PLAN)))
        in_ch = c.in_channels
        for i, (name, (mult, stride)) in enumerate(zip(self.layer_names, UNIT_PLAN)):
            out_ch = c.base_channel * mult
            # The first unit has no shortcut (as the reference): 3 -> 64 channels.
            unit = TCN_GCN_unit(in_ch, out_ch, A, stride=stride, residual=i > 0, adaptive=c.adaptive)
            self.add_module(name, unit)
            in_ch = out_ch

        self.drop_out = nn.Dropout(c.drop_out)
        self.fc = nn.Linear(c.feature_dim, c.num_class)
        nn.init.normal_(self.fc.weight, 0.0, math.sqrt(2.0 / c.num_class))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (N, num_class), feature (N, feature_dim)).

        The feature is the last unit's map averaged over time, joints and persons (before
        dropout): the skeleton side of MMCL's feature alignment.
        """
        check_input("CTR-GCN", self.config, x)
        N, C, T, V, M = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(N, M * V * C, T)
        x = self.data_bn(x)
        x = x.view(N, M, V, C, T).permute(0, 1, 3, 4, 2).reshape(N * M, C, T, V)
        for name in self.layer_names:
            x = getattr(self, name)(x)
        feature = x.reshape(N, M, x.shape[1], -1).mean(dim=(1, 3))
        logits = self.fc(self.drop_out(feature))
        return logits, feature
