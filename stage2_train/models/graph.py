"""Skeleton graph adjacency for GCN backbones, built from a `shared.layouts.Layout`.

The 'spatial' partition is CTR-GCN's (and ST-GCN's): three (V, V) matrices stacked as
identity, inward (child -> parent) and outward (parent -> child) edges, each of the two edge
matrices normalised by column so every joint averages over the neighbours it receives from.
"""

from __future__ import annotations

import numpy as np

from shared.errors import MMCLError
from shared.layouts import Layout, get_layout

MODES = ("spatial",)


def edge_matrix(edges: list[tuple[int, int]], num_node: int) -> np.ndarray:
    """Binary (V, V) matrix with A[j, i] = 1 for each edge (i, j): row = receiver, column = sender."""
    a = np.zeros((num_node, num_node), dtype=np.float64)
    if edges:
        src, dst = np.asarray(edges, dtype=np.int64).T
        a[dst, src] = 1.0
    return a


def normalize_digraph(a: np.ndarray) -> np.ndarray:
    """A @ D^-1 with D the column sums; all-zero columns stay zero."""
    deg = a.sum(axis=0)
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return a * inv[None, :]


def spatial_graph(num_node: int, inward: list[tuple[int, int]]) -> np.ndarray:
    """(3, V, V): identity, normalised inward, normalised outward."""
    outward = [(j, i) for i, j in inward]
    return np.stack(
        (
            np.eye(num_node),
            normalize_digraph(edge_matrix(inward, num_node)),
            normalize_digraph(edge_matrix(outward, num_node)),
        )
    )


class Graph:
    """Adjacency of a skeleton layout, like pyskl's `Graph(layout, mode)`.

    `A` is a float32 array (3, V, V) for mode 'spatial'.
    """

    def __init__(self, layout: Layout | str, mode: str = "spatial") -> None:
        if isinstance(layout, str):
            try:
                layout = get_layout(layout)
            except KeyError as err:
                raise MMCLError(f"graph: {err.args[0]}") from None
        if mode not in MODES:
            raise MMCLError(f"graph: unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.layout = layout
        self.mode = mode
        self.num_node = layout.num_joints
        self.inward = list(layout.inward)
        self.outward = [(j, i) for i, j in self.inward]
        self.A = spatial_graph(self.num_node, self.inward).astype(np.float32)

    def __repr__(self) -> str:
        return f"Graph(layout={self.layout.name!r}, mode={self.mode!r}, num_node={self.num_node})"
