"""The backbones beside CTR-GCN (HD-GCN, ST-GCN++, ProtoGCN): parameter counts of the official
configs, HD-GCN's hierarchy, and forwards equal to the official code's on a fixed input
(data/backbones/*.pt, written once by make_backbone_references.py from the official releases)."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch
from backbone_reference import DATA, NUM_CLASS, reference_weights

from shared.errors import MMCLError
from stage2_train.models.backbones import (
    BACKBONES,
    build_backbone,
    build_backbone_loss,
    from_official,
)
from stage2_train.models.hierarchy import groups, hierarchy_graph
from stage2_train.models.mmcl_model import MMCLModel
from stage2_train.models.model_config import MMCLModelConfig, backbone_config
from stage2_train.models.model_spec import model_config_from_dict


def n_params(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def ntu(kind: str, num_class: int, **values):
    return backbone_config(kind, num_class=num_class, num_point=25, num_person=2, graph="ntu25", **values)


# Trainable parameters of backbone + classifier built from the official configs (BACKBONES.md):
# (inference path, with the training-only layers).
@pytest.mark.parametrize(
    ("kind", "num_class", "inference", "training"),
    [
        ("hdgcn", 60, 1_659_980, 1_659_980),
        ("hdgcn", 120, 1_675_400, 1_675_400),
        ("stgcnpp", 60, 1_403_144, 1_403_144),
        ("stgcnpp", 120, 1_418_564, 1_418_564),
        ("protogcn", 60, 3_728_796, 4_344_860),
        ("protogcn", 120, 3_751_896, 4_367_960),
    ],
)
def test_parameter_counts_match_the_official_configs(kind, num_class, inference, training):
    config = ntu(kind, num_class)
    backbone = build_backbone(config)
    assert n_params(backbone) == inference
    assert n_params(backbone) + n_params(build_backbone_loss(config)) == training


def test_hdgcn_counts_do_not_depend_on_the_centre_of_mass():
    assert {n_params(build_backbone(ntu("hdgcn", 60, center_of_mass=com))) for com in (1, 2, 21)} == {1_659_980}


# Jho-Yonsei/HD-GCN graph/tools.py get_groups, 1-based, as released.
OFFICIAL_GROUPS = {
    2: [[2], [1, 21], [13, 17, 3, 5, 9], [14, 18, 4, 6, 10], [15, 19, 7, 11], [16, 20, 8, 12], [22, 23, 24, 25]],
    21: [[21], [2, 3, 5, 9], [4, 6, 10, 1], [7, 11, 13, 17], [8, 12, 14, 18], [22, 23, 24, 25, 15, 19], [16, 20]],
    1: [[1], [2, 13, 17], [14, 18, 21], [3, 5, 9, 15, 19], [4, 6, 10, 16, 20], [7, 11], [8, 12, 22, 23, 24, 25]],
}


@pytest.mark.parametrize("com", sorted(OFFICIAL_GROUPS))
def test_hierarchy_rings_are_the_official_ntu_groups(com):
    ours = [sorted(j + 1 for j in ring) for ring in groups("ntu25", com)]
    assert ours == [sorted(ring) for ring in OFFICIAL_GROUPS[com]]


def test_kinect_v1_hierarchy_covers_every_joint_once_from_each_centre():
    for com in range(1, 21):
        rings = groups("kinect_v1", com)
        assert sorted(j for ring in rings for j in ring) == list(range(20))
        assert rings[0] == [com - 1]
    assert [[j + 1 for j in r] for r in groups("kinect_v1", 3)] == [
        [3],
        [2, 4, 5, 9],
        [1, 6, 10],
        [7, 11, 13, 17],
        [8, 12, 14, 18],
        [15, 19],
        [16, 20],
    ]


def test_hierarchy_graph_levels_link_consecutive_rings():
    A = hierarchy_graph("ntu25", 21)
    assert A.shape == (6, 3, 25, 25)
    rings = groups("ntu25", 21)
    for level, (inner, outer) in enumerate(zip(rings, rings[1:])):
        identity, forward, reverse = A[level]
        assert sorted(identity.diagonal().nonzero()[0]) == sorted(inner + outer)
        # every joint of the outer ring receives from each inner joint equally (columns sum to 1)
        assert set(forward.nonzero()[0]) == set(outer) and set(forward.nonzero()[1]) == set(inner)
        torch.testing.assert_close(torch.from_numpy(forward.sum(0)[inner]), torch.ones(len(inner), dtype=torch.float64))
        assert set(reverse.nonzero()[0]) == set(inner)


def test_a_centre_of_mass_outside_the_layout_is_refused():
    with pytest.raises(MMCLError, match="center_of_mass=26"):
        ntu("hdgcn", 60, center_of_mass=26)


# --------------------------------------------------------------------------- equality with the official code


def reference(kind: str) -> dict:
    return torch.load(DATA / f"{kind}.pt", weights_only=True)


def official_model(ref: dict) -> MMCLModel:
    """Our model holding the weights the official one ran with, float64, eval mode."""
    config = MMCLModelConfig(ntu(ref["kind"], NUM_CLASS, **ref["config"]))
    model = MMCLModel(config).double().eval()
    state = from_official(ref["kind"], reference_weights([(k, tuple(s)) for k, s in ref["shapes"]]))
    if "memory" in ref:
        state["backbone_loss.memory"] = ref["memory"]
    model.load_state_dict(state, strict=True)
    return model


@pytest.mark.parametrize("kind", ["hdgcn", "stgcnpp", "protogcn"])
def test_forward_equals_the_official_forward(kind):
    ref = reference(kind)
    model = official_model(ref)
    with torch.no_grad():
        logits, feature = model.backbone.forward_features(ref["x"])
    torch.testing.assert_close(logits, ref["logits"], rtol=0, atol=1e-9)
    assert feature.shape == (2, model.config.backbone.feature_dim)


def test_protogcn_training_path_equals_the_official():
    ref = reference("protogcn")
    model = official_model(ref)
    loss = model.backbone_loss
    with torch.no_grad():
        _, _, refinement = model.backbone.forward_train(ref["x"])
        profile = loss.profile(refinement)  # the official backbone's reconstructed graph
    torch.testing.assert_close(profile, ref["graph"], rtol=0, atol=1e-9)
    # The official contrastive loss runs in float32 only (it casts its masks with .float()).
    loss.float()
    with torch.no_grad():
        contrastive = loss.contrastive(ref["graph"].float(), ref["labels"], ref["logits_for_loss"].float())
    torch.testing.assert_close(contrastive, ref["contrastive"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(loss.memory, ref["memory_after"], rtol=0, atol=1e-6)
    assert not torch.allclose(ref["memory_after"], ref["memory"].float())  # sample 0's class centroid moved


def test_protogcn_loss_is_weighted_and_reaches_its_layers():
    torch.manual_seed(0)
    config = ntu("protogcn", 4, base_channel=8, num_prototype=6)
    model = MMCLModel(MMCLModelConfig(config)).train()
    # The refinement strengths start at zero (as the official), which leaves the refinement, and so
    # the prototypes' query gradient, zero on the first step; one step of training moves them.
    with torch.no_grad():
        model.backbone.gcn[-1].gcn.alpha.fill_(0.1)
        model.backbone.gcn[-1].gcn.beta.fill_(0.1)
    x, labels = torch.randn(3, 3, 8, 25, 2), torch.tensor([0, 1, 3])
    out = model(x, label=labels)
    assert out["backbone_loss"].dim() == 0 and out["backbone_loss"] > 0
    out["backbone_loss"].backward()
    for name, p in model.backbone_loss.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    last = model.backbone.gcn[-1].gcn
    assert last.alpha.grad[0] != 0 and last.beta.grad[0] != 0  # the loss shapes the learned topology
    assert model(x)["backbone_loss"] is None  # no labels (test time): no loss, no training-only layers run


@pytest.mark.parametrize("kind", sorted(BACKBONES))
def test_spec_records_and_restores_the_backbone(kind):
    config = MMCLModelConfig(ntu(kind, 7, base_channel=16))
    saved = asdict(config)
    assert saved["backbone"]["kind"] == kind
    assert model_config_from_dict(saved) == config
    del saved["backbone"]["kind"]  # a spec from before backbones were selectable is CTR-GCN's
    if kind == "ctrgcn":
        assert model_config_from_dict(saved) == config


def test_center_of_mass_reaches_hdgcn_and_only_hdgcn():
    from stage2_train.models.model_config import ArchitectureConfig

    hdgcn = ArchitectureConfig(backbone="hdgcn", center_of_mass=2, use_fam=False, use_frm=False)
    model = hdgcn.model_config(60, "ntu25", 25, 2, None, None)
    assert model.backbone.com == 2
    ucla = ArchitectureConfig(backbone="hdgcn", use_fam=False, use_frm=False)
    ucla = ucla.model_config(10, "kinect_v1", 20, 1, None, None)
    assert ucla.backbone.com == 3
    with pytest.raises(MMCLError, match="HD-GCN only"):
        ArchitectureConfig(backbone="stgcnpp", center_of_mass=2)
