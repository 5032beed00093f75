"""CTR-GCN backbone and skeleton graph: sizes, shapes, pooling and adjacency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared.errors import MMCLError
from shared.layouts import Layout
from stage2_train.models.ctrgcn import CTRGCN
from stage2_train.models.model_config import CTRGCNConfig
from stage2_train.models.graph import Graph


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Counts of the reference implementation (Uason-Chen/CTR-GCN model/ctrgcn.py).
@pytest.mark.parametrize(
    ("num_class", "num_point", "num_person", "graph", "expected"),
    [
        (120, 25, 2, "ntu25", 1_462_092),
        (60, 25, 2, "ntu25", 1_446_672),
        (10, 20, 1, "kinect_v1", 1_426_892),
    ],
)
def test_parameter_count_matches_reference(num_class, num_point, num_person, graph, expected):
    assert n_params(CTRGCN(CTRGCNConfig(num_class, num_point, num_person, graph))) == expected


@pytest.mark.parametrize(("num_point", "graph"), [(25, "ntu25"), (20, "kinect_v1")])
@pytest.mark.parametrize("num_person", [1, 2])
def test_output_shapes(num_point, graph, num_person):
    torch.manual_seed(0)
    model = CTRGCN(CTRGCNConfig(7, num_point, num_person, graph)).eval()
    x = torch.randn(2, 3, 12, num_point, num_person)
    with torch.no_grad():
        logits, feature = model.forward_features(x)
        plain = model(x)
    assert logits.shape == (2, 7)
    assert feature.shape == (2, 256)
    torch.testing.assert_close(plain, logits)


def test_feature_is_mean_of_last_map_over_time_joints_persons():
    torch.manual_seed(0)
    model = CTRGCN(CTRGCNConfig(5, 25, 2, "ntu25", drop_out=0.5)).eval()
    captured = {}
    model.l10.register_forward_hook(lambda _m, _i, out: captured.setdefault("map", out))
    x = torch.randn(3, 3, 16, 25, 2)
    with torch.no_grad():
        logits, feature = model.forward_features(x)
    last = captured["map"]  # (N*M, C, T', V)
    assert last.shape == (6, 256, 4, 25)  # two stride-2 units: 16 -> 4 frames
    expected = last.view(3, 2, 256, 4, 25).mean(dim=(1, 3, 4))
    torch.testing.assert_close(feature, expected)
    torch.testing.assert_close(logits, model.fc(expected))


def test_state_dict_keys_follow_the_reference():
    model = CTRGCN(CTRGCNConfig(60, 25, 2, "ntu25"))
    keys = set(model.state_dict())
    for key in (
        "data_bn.running_mean",
        "l1.gcn1.PA",
        "l1.gcn1.alpha",
        "l1.gcn1.down.0.weight",
        "l1.gcn1.convs.2.conv4.weight",
        "l1.tcn1.branches.0.3.conv.weight",
        "l1.tcn1.branches.2.4.weight",
        "l5.residual.conv.weight",
        "l8.residual.bn.bias",
        "fc.weight",
    ):
        assert key in keys, key
    assert not any(k.startswith("l1.residual") for k in keys)  # the first unit has no shortcut
    assert not any(k.startswith("l2.gcn1.down") for k in keys)  # identity shortcut, no weights


def test_initialisation_as_reference():
    torch.manual_seed(0)
    model = CTRGCN(CTRGCNConfig(120, 25, 2, "ntu25"))
    A = torch.from_numpy(Graph("ntu25").A)
    for i in range(1, 11):
        unit = getattr(model, f"l{i}")
        torch.testing.assert_close(unit.gcn1.PA.data, A)
        assert unit.gcn1.alpha.item() == 0.0
        assert torch.all(unit.gcn1.bn.weight == 1e-6)
        tcn_bn = unit.tcn1.branches[0][1].weight
        assert 0.9 < tcn_bn.mean().item() < 1.1 and 0 < tcn_bn.std().item() < 0.05
    assert torch.all(model.data_bn.weight == 1)
    assert model.fc.weight.std().item() == pytest.approx(math.sqrt(2 / 120), rel=0.05)


def test_fixed_topology_is_a_buffer_not_a_parameter():
    model = CTRGCN(CTRGCNConfig(60, 25, 2, "ntu25", adaptive=False))
    assert n_params(model) == 1_446_672 - 10 * 3 * 25 * 25
    assert "l1.gcn1.A" not in model.state_dict()
    model(torch.randn(2, 3, 8, 25, 2)).sum().backward()


def test_config_and_input_errors():
    with pytest.raises(MMCLError, match="num_point=25"):
        CTRGCNConfig(10, 25, 1, "kinect_v1")
    with pytest.raises(MMCLError, match="unknown skeleton layout"):
        CTRGCNConfig(10, 25, 1, "coco17")
    model = CTRGCN(CTRGCNConfig(10, 20, 1, "kinect_v1", base_channel=8))
    with pytest.raises(MMCLError, match=r"M=1"):
        model(torch.randn(2, 3, 8, 20, 2))


# --- graph ------------------------------------------------------------------------------------


def toy_layout(bones_1based) -> Layout:
    names = tuple(f"j{i}" for i in range(len(bones_1based)))
    return Layout(name="toy", joint_names=names, bone_pairs_1based=tuple(bones_1based), center_1based=1)


def test_graph_three_joint_chain():
    # 0 <- 1 <- 2 (root 0). Row = receiving joint, column = sending joint.
    graph = Graph(toy_layout([(1, 1), (2, 1), (3, 2)]))
    inward = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32)  # child -> parent
    outward = inward.T.copy()  # parent -> child
    assert graph.A.dtype == np.float32 and graph.A.shape == (3, 3, 3)
    np.testing.assert_array_equal(graph.A[0], np.eye(3))
    np.testing.assert_array_equal(graph.A[1], inward)  # every column has at most one edge
    np.testing.assert_array_equal(graph.A[2], outward)


def test_graph_normalises_columns():
    # Root 0 with two children: its outward column splits 1/2, 1/2.
    graph = Graph(toy_layout([(1, 1), (2, 1), (3, 1)]))
    np.testing.assert_array_equal(graph.A[1], [[0, 1, 1], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(graph.A[2], [[0, 0, 0], [0.5, 0, 0], [0.5, 0, 0]])


def test_ntu_graph_structure():
    A = Graph("ntu25").A
    assert A.shape == (3, 25, 25)
    assert (A[1] > 0).sum() == (A[2] > 0).sum() == 24  # 25 joints, one root
    np.testing.assert_array_equal(A[1] > 0, (A[2] > 0).T)
    # Inward: each joint sends only to its one parent, so every weight is 1.
    assert set(np.unique(A[1])) == {0.0, 1.0}
    # Outward: SpineShoulder (index 20) sends to its 4 children SpineMid, Neck, both shoulders.
    np.testing.assert_allclose(A[2][[1, 2, 4, 8], 20], 0.25)
    col_sums = A[2].sum(axis=0)
    assert np.all(np.isclose(col_sums, 1) | (col_sums == 0))


def test_graph_errors():
    with pytest.raises(MMCLError, match="mode"):
        Graph("ntu25", mode="uniform")
    with pytest.raises(MMCLError, match="unknown skeleton layout"):
        Graph("nope")


def test_graph_convolution_equals_the_reference_formulation():
    """CTRGC pools over time before conv1/conv2; the reference pools after (`conv1(x).mean(-2)`).
    Affine convs make both the same maths: outputs and gradients agree to float tolerance."""
    from stage2_train.models.ctrgcn import CTRGC

    torch.manual_seed(0)
    ours = CTRGC(16, 32)
    x = torch.randn(4, 16, 12, 25, requires_grad=True)
    A, alpha = torch.rand(25, 25), torch.tensor([0.7], requires_grad=True)

    def reference(m):  # the authors' model/ctrgcn.py CTRGC.forward
        x1, x2, x3 = m.conv1(x).mean(-2), m.conv2(x).mean(-2), m.conv3(x)
        x1 = m.conv4(torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))) * alpha + A[None, None]
        return torch.einsum("ncuv,nctv->nctu", x1, x3)

    grads = []
    for out in (ours(x, A, alpha), reference(ours)):
        weights = torch.randn_like(out, generator=torch.Generator().manual_seed(1))
        grads.append(torch.autograd.grad((out * weights).sum(), [x, alpha, *ours.parameters()]))
        grads[-1] = (out.detach(), *grads[-1])
    for a, b in zip(*grads):  # sums in another order: tolerance relative to each tensor's scale
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
