"""HD-GCN's hierarchically decomposed graph, built from a `shared.layouts.Layout` and a centre of mass.

The joints are split into rings by hop distance from the centre of mass (CoM) along the bones;
rings past the seventh are merged into it (HD-GCN's NTU tables have 7 groups). Consecutive rings
(i, i+1) make one hierarchy level, whose (3, V, V) adjacency is, like ST-GCN's spatial partition:
self-links of both rings, edges ring i -> ring i+1 (every pair, not only bones) and the same
edges reversed, each edge matrix normalised by column.

The official release (Jho-Yonsei/HD-GCN `graph/tools.py`) writes the NTU-25 groups by hand for
CoM 1, 2 and 21; they are these rings when the hand tip and thumb hang from the hand, as in the
Kinect v2 body model (`HAND_ATTACHMENT`; the CTR-GCN graph chains tip -> thumb -> hand instead).
`tests/stage2/test_backbones.py` checks the rings against the official tables. The release has
no Kinect v1 (NW-UCLA) hierarchy: the same rule on its 20 bones gives one, e.g. from the shoulder
centre (3, the analogue of NTU's 21): {3} {2 4 5 9} {1 6 10} {7 11 13 17} {8 12 14 18} {15 19}
{16 20}. A CoM whose rings number fewer than 7 gives fewer levels.
"""

from __future__ import annotations

import itertools
from collections import deque

import numpy as np

from shared.errors import MMCLError
from shared.layouts import Layout, get_layout

from .graph import edge_matrix, normalize_digraph

MAX_GROUPS = 7  # HD-GCN's NTU tables: 7 rings, 6 levels

# 1-based (joint, the joint it hangs from in the hierarchy) where that differs from the layout's bones.
HAND_ATTACHMENT: dict[str, dict[int, int]] = {"ntu25": {22: 8, 24: 12}}


def hierarchy_edges(layout: Layout) -> list[tuple[int, int]]:
    """Undirected bones (0-based) the rings are measured along."""
    attach = HAND_ATTACHMENT.get(layout.name, {})
    return [(c, attach.get(c + 1, p + 1) - 1) for c, p in layout.inward]


def groups(layout: Layout | str, com: int) -> list[list[int]]:
    """Rings of 0-based joints by hop distance from the 1-based joint `com` (at most 7)."""
    layout = get_layout(layout) if isinstance(layout, str) else layout
    if not 1 <= com <= layout.num_joints:
        raise MMCLError(
            f"HD-GCN hierarchy: centre of mass {com} is not a joint of {layout.name} (1..{layout.num_joints})"
        )
    neighbours: list[list[int]] = [[] for _ in range(layout.num_joints)]
    for a, b in hierarchy_edges(layout):
        neighbours[a].append(b)
        neighbours[b].append(a)
    depth = {com - 1: 0}
    queue = deque([com - 1])
    while queue:
        j = queue.popleft()
        for k in neighbours[j]:
            if k not in depth:
                depth[k] = depth[j] + 1
                queue.append(k)
    if len(depth) != layout.num_joints:
        raise MMCLError(f"HD-GCN hierarchy: layout {layout.name} is not connected")
    rings: list[list[int]] = [[] for _ in range(min(MAX_GROUPS, max(depth.values()) + 1))]
    for j in sorted(depth):
        rings[min(depth[j], MAX_GROUPS - 1)].append(j)
    return rings


def level_edges(rings: list[list[int]]) -> list[tuple[list, list, list]]:
    """Per level i: (self-links of rings i and i+1, edges ring i -> ring i+1, edges ring i+1 -> ring i)."""
    out = []
    for inner, outer in itertools.pairwise(rings):
        identity = [(j, j) for j in inner + outer]
        forward = [(j, k) for j in inner for k in outer]
        reverse = [(k, j) for j in inner for k in outer]
        out.append((identity, forward, reverse))
    return out


def hierarchy_graph(layout: Layout | str, com: int) -> np.ndarray:
    """(L, 3, V, V) float64 adjacency: per level, identity, normalised forward, normalised reverse."""
    layout = get_layout(layout) if isinstance(layout, str) else layout
    v = layout.num_joints
    return np.stack(
        [
            np.stack(
                (
                    edge_matrix(identity, v),
                    normalize_digraph(edge_matrix(forward, v)),
                    normalize_digraph(edge_matrix(reverse, v)),
                )
            )
            for identity, forward, reverse in level_edges(groups(layout, com))
        ]
    )


def level_joints(layout: Layout | str, com: int) -> list[list[int]]:
    """The joints of each level (rings i and i+1): what HD-GCN's attention pools per level."""
    rings = groups(layout, com)
    return [rings[i] + rings[i + 1] for i in range(len(rings) - 1)]
