"""Reference outputs of the official HD-GCN, ST-GCN++ (pyskl) and ProtoGCN forwards, shared by
`make_backbone_references.py` (which ran the official code once) and `test_backbones.py`.

Each file under data/backbones/ holds a fixed float64 input, the official state dict's key names
and shapes, and the official outputs for the weights `reference_weights` draws from those names:
the weights themselves are not stored (megabytes), only how to make them.
"""

from __future__ import annotations

from pathlib import Path

import torch

DATA = Path(__file__).parent / "data" / "backbones"
SEED = 24
NUM_CLASS = 5
INPUT_SHAPE = (2, 3, 16, 25, 2)  # N, C, T, V, M (NTU-25, two persons, 16 frames)


def reference_input() -> torch.Tensor:
    return torch.randn(INPUT_SHAPE, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64)


def reference_weights(shapes: list[tuple[str, tuple[int, ...]]], seed: int = SEED) -> dict[str, torch.Tensor]:
    """float64 tensors for each (name, shape), drawn in order from one seeded generator: BN scales
    near 1 and variances in [0.5, 1.5) (so eval-mode BN is not the identity), weights at
    1/sqrt(fan-in), other vectors (biases, the zero-initialised refinement strengths alpha and beta,
    ProtoGCN's joint mix) at 0.1: every path of the forward carries signal."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes:
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[name] = torch.zeros(shape, dtype=torch.long)
        elif leaf == "running_var":
            out[name] = 0.5 + torch.rand(shape, generator=g, dtype=torch.float64)
        elif leaf == "running_mean":
            out[name] = 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif len(shape) == 1 and leaf == "weight":  # BN scales
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
        elif len(shape) >= 2:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod()))
            out[name] = torch.randn(shape, generator=g, dtype=torch.float64) / fan_in**0.5
        else:
            out[name] = 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)
    return out
