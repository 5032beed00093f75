"""ProtoGCN (Liu et al., CVPR 2025): motion-topology-enhanced graph convolutions and prototype
reconstruction of the learned topology.

Each graph convolution mixes K learned topologies (initialised at random around a small constant)
with two input-dependent refinements: an inter-joint one (tanh of pairwise differences of
time-pooled embeddings, channel-wise) and an intra one (softmax of their dot products), weighted
by learnable scalars that start at zero. The temporal block is pyskl's multi-branch TCN with a
learnable per-joint mix of the joints' mean ("dg" variant). During training the last block's
refinement (the motion topology) is rebuilt from learned prototypes and pulled towards class
centroids by a class-specific contrastive loss (`PrototypeLoss`, weight 0.2 beside CE): those
layers are training-only and live apart from the backbone, like FAM and FRM.

Our implementation of firework8/ProtoGCN `protogcn/models/gcns/protogcn.py`, its `unit_gcn`,
`dgmstcn`, `SimpleHead` and `Class_Specific_Contrastive_Loss`. Attribute names follow them;
`backbones.from_official` maps an official state dict (backbone.post/bn/prn and
cls_head.csc_loss.cl_fc go to the loss). Widths the official hard-codes for NTU (384 = the
last block's width, 625 = 25 x 25 joints) come from the config and the layout here.

Shapes: N batch, C channels, K topologies, T frames, V joints, M persons.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, check_input
from .model_config import ProtoGCNConfig
from .stgcnpp import MSTCN, block_shortcut, pool_persons, pyskl_input


def random_graph(config: ProtoGCNConfig) -> torch.Tensor:
    """(K, V, V) float32 drawn N(graph_mean, graph_std^2), as the official `Graph(mode='random')`
    (one draw, copied into every block); from torch's generator, which the run's seed sets (the
    official draws from numpy's)."""
    c = config
    return torch.randn(c.num_filter, c.num_point, c.num_point) * c.graph_std + c.graph_mean


class MotionTopologyGCN(nn.Module):
    """ProtoGCN's `unit_gcn`: x (N, C_in, T, V) -> (output (N, C_out, T, V), refinement (N, K*C_mid, V, V))."""

    def __init__(self, in_channels: int, out_channels: int, A: torch.Tensor, ratio: float) -> None:
        super().__init__()
        self.num_subsets = K = A.shape[0]
        self.mid_channels = mid = int(ratio * out_channels)
        self.A = nn.Parameter(A.clone())  # K, V, V
        self.pre = nn.Sequential(nn.Conv2d(in_channels, mid * K, 1), nn.BatchNorm2d(mid * K), nn.ReLU())
        self.post = nn.Conv2d(mid * K, out_channels, 1)
        # Only alpha[0] and beta[0] are used, as the reference (which keeps K of each).
        self.alpha = nn.Parameter(torch.zeros(K))
        self.beta = nn.Parameter(torch.zeros(K))
        self.conv1 = nn.Conv2d(in_channels, mid * K, 1)
        self.conv2 = nn.Conv2d(in_channels, mid * K, 1)
        self.down = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, t, v = x.shape
        K, mid = self.num_subsets, self.mid_channels
        pre = self.pre(x).view(n, K, mid, t, v)
        q = self.conv1(x).view(n, K, mid, t, v).mean(dim=3)  # N, K, C, V (time-pooled)
        k = self.conv2(x).view(n, K, mid, t, v).mean(dim=3)
        inter = torch.tanh(q.unsqueeze(-1) - k.unsqueeze(-2)) * self.alpha[0]  # N, K, C, V, V
        intra = torch.einsum("nkcv,nkcw->nkvw", q, k).softmax(dim=-2).unsqueeze(2) * self.beta[0]  # N, K, 1, V, V
        topology = inter + intra + self.A[None, :, None]  # N, K, C, V, V
        y = torch.einsum("nkctv,nkcvw->nkctw", pre, topology).reshape(n, K * mid, t, v)
        y = self.act(self.bn(self.post(y)) + self.down(x))
        refinement = (inter + intra).reshape(n, K * mid, v, v)
        return y, refinement


class JointMixTCN(MSTCN):
    """pyskl's `dgmstcn` (ProtoGCN's `mstcn`): the multi-branch TCN run on the joints plus their
    mean, whose output is added to every joint with a learnable per-joint coefficient."""

    def __init__(self, in_channels: int, out_channels: int, num_point: int, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, stride=stride)
        self.add_coeff = nn.Parameter(torch.zeros(num_point))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x.shape[-1]
        out = self.branch_outputs(torch.cat([x, x.mean(-1, keepdim=True)], dim=-1))  # N, C, T', V+1
        mixed = out[..., :v] + out[..., v:] * self.add_coeff  # N, C, T', V
        return self.bn(self.transform(mixed))


class ProtoGCNBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        A: torch.Tensor,
        num_point: int,
        ratio: float,
        stride: int = 1,
        residual: bool = True,
    ) -> None:
        super().__init__()
        self.gcn = MotionTopologyGCN(in_channels, out_channels, A, ratio)
        self.tcn = JointMixTCN(out_channels, out_channels, num_point, stride=stride)
        self.residual = block_shortcut(residual, in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, refinement = self.gcn(x)
        y = self.tcn(y)
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y), refinement


class ProtoGCN(Backbone):
    """ProtoGCN's inference path: (N, C, T, V, M) skeletons -> (N, num_class) logits."""

    def __init__(self, config: ProtoGCNConfig) -> None:
        super().__init__()
        self.config = c = config
        A = random_graph(c)
        self.data_bn = nn.BatchNorm1d(c.in_channels * c.num_point)
        blocks, in_ch = [], c.in_channels
        for i, (out_ch, stride) in enumerate(c.plan):
            blocks.append(ProtoGCNBlock(in_ch, out_ch, A, c.num_point, c.gcn_ratio, stride=stride, residual=i > 0))
            in_ch = out_ch
        self.gcn = nn.ModuleList(blocks)
        self.drop_out = nn.Dropout(c.drop_out)
        self.fc = nn.Linear(c.feature_dim, c.num_class)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, feature, the last block's refinement averaged over persons (N, C, V, V))."""
        check_input("ProtoGCN", self.config, x)
        m = x.shape[4]
        y = pyskl_input(self.data_bn, x)  # N*M, C, T, V
        for block in self.gcn:
            y, refinement = block(y)
        feature = pool_persons(y, m)  # N, C'
        refinement = refinement.view(-1, m, *refinement.shape[1:]).mean(dim=1)  # N, C', V, V
        return self.fc(self.drop_out(feature)), feature, refinement

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, feature, _ = self.forward_train(x)
        return logits, feature


class PrototypeReconstruction(nn.Module):
    """Rows (..., C) -> a soft mix of learned prototypes (..., C): softmax(x Q) P, dropout 0.1."""

    def __init__(self, dim: int, num_prototype: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.query_matrix = nn.Linear(dim, num_prototype, bias=False)
        self.memory_matrix = nn.Linear(num_prototype, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.memory_matrix(self.query_matrix(x).softmax(dim=-1)))


class PrototypeLoss(nn.Module):
    """ProtoGCN's training-only part: the last topology rebuilt from prototypes, then the
    class-specific contrastive loss of its joint-pair profile against class centroids.

    The centroids (`memory`, (hidden, classes)) move towards the mean projection of the batch's
    correctly classified samples of each class (momentum 0.9); a buffer, not a weight.
    """

    def __init__(self, config: ProtoGCNConfig) -> None:
        super().__init__()
        c = self.config = config
        dim, pairs = c.feature_dim, c.num_point * c.num_point
        self.prn = PrototypeReconstruction(dim, c.num_prototype)
        self.post = nn.Conv2d(dim, dim, 1)
        self.bn = nn.BatchNorm2d(dim)
        self.cl_fc = nn.Linear(pairs, c.loss_hidden)
        self.register_buffer("memory", torch.randn(c.loss_hidden, c.num_class))

    def profile(self, refinement: torch.Tensor) -> torch.Tensor:
        """(N, C, V, V) refinement -> (N, V*V): rebuilt per joint pair, 1x1 conv, BN, ReLU, mean over C."""
        n, ch, v, _ = refinement.shape
        rebuilt = self.prn(refinement.flatten(2).transpose(1, 2))  # N, V*V, C
        rebuilt = rebuilt.transpose(1, 2).reshape(n, ch, v, v)
        return F.relu(self.bn(self.post(rebuilt))).mean(dim=1).flatten(1)

    def centroids(self, projected: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The memory moved towards this batch's correct samples (hidden, classes); stored, detached."""
        num_class = self.config.num_class
        correct = F.one_hot(labels, num_class) * F.one_hot(logits.argmax(1), num_class)  # N, classes
        correct = (correct * (logits.softmax(1) > 0)).to(projected.dtype)
        count = correct.sum(0, keepdim=True)  # 1, classes
        batch_mean = projected.T @ correct / (count + 1e-12)  # hidden, classes
        keep = torch.where(count > 1e-8, self.config.loss_momentum, 1.0).to(projected.dtype)
        moved = self.memory.to(projected.dtype) * keep + (1 - keep) * batch_mean
        with torch.no_grad():
            self.memory.copy_(moved.detach())
        return moved

    def contrastive(self, profile: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """CE of each sample's cosine similarities to the class centroids / tau (unweighted);
        profile (N, V*V), labels (N,), logits (N, classes) detached."""
        projected = self.cl_fc(profile)  # N, hidden
        moved = self.centroids(projected, labels, logits)
        f = projected / (projected.norm(dim=1, keepdim=True) + 1e-12)
        centres = moved.T / (moved.T.norm(dim=-1, keepdim=True) + 1e-12)  # classes, hidden
        return F.cross_entropy(f @ centres.T / self.config.loss_tau, labels)

    def forward(self, refinement: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """The weighted loss (a scalar) from the last block's refinement (N, C, V, V)."""
        return self.config.loss_weight * self.contrastive(self.profile(refinement), labels, logits.detach())
