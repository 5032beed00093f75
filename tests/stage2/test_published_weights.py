"""Published CTR-GCN weights: official CTR-GCN state dicts (with or without DataParallel's
`module.`) and pyskl's mmcv checkpoints load into `--init-from` and `mmcl test --checkpoint`.

The files are built in each format's key layout from a real 1-epoch run's weights (renamed, and
for pyskl re-expressed in its transposed topology), then read back."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from stage2_run import ONE_EPOCH, SKELETON_ONLY, invoke, train
from torch import nn

from shared.errors import MMCLError
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.models.ctrgcn import CTRGC
from stage2_train.training.published_weights import CTRGCN, PYSKL, PublishedWeights, from_pyskl, load_weights


def official(model: dict[str, torch.Tensor], prefix: str = "") -> OrderedDict:
    """CTR-GCN's `model.ctrgcn.Model` state dict (under DataParallel: prefix "module.")."""
    return OrderedDict((prefix + k.removeprefix("backbone."), v) for k, v in model.items() if k.startswith("backbone."))


def pyskl(model: dict[str, torch.Tensor]) -> dict:
    """pyskl's mmcv checkpoint of its CTRGCN + GCNHead holding the same network: blocks under
    backbone.net.I, the topology transposed (see published_weights), the head as cls_head.fc_cls."""
    state = OrderedDict()
    for key, value in model.items():
        if key.startswith("backbone.fc."):
            state["cls_head.fc_cls." + key.removeprefix("backbone.fc.")] = value
            continue
        block = re.fullmatch(r"backbone\.l(\d+)\.(.*)", key)
        if block is None:
            if key.startswith("backbone."):
                state[key] = value
            continue
        rest = block[2]
        if rest == "gcn1.PA":
            rest, value = "gcn1.A", value.transpose(-1, -2).contiguous()
        elif m := re.fullmatch(r"(gcn1\.convs\.\d+\.)conv([12])\.(weight|bias)", rest):
            rest = f"{m[1]}conv{3 - int(m[2])}.{m[3]}"
        elif re.fullmatch(r"gcn1\.convs\.\d+\.conv4\.weight", rest):
            value = -value
        state[f"backbone.net.{int(block[1]) - 1}.{rest}"] = value
    state["backbone.A"] = torch.rand(3, 25, 25)  # pyskl's fixed graph buffer
    meta = {"epoch": 16, "iter": 1000, "mmcv_version": "1.5.0", "config": "model = dict(type='RecognizerGCN')"}
    return {"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}


@pytest.fixture(scope="module")
def files(joint_run, tmp_path_factory) -> dict[str, Path]:
    model = load_checkpoint(joint_run / "last.pt").model
    folder = tmp_path_factory.mktemp("published")
    out = {
        "ctrgcn": folder / "ntu60_joint.pt",
        "dataparallel": folder / "runs-dp.pt",
        "pyskl": folder / "pyskl_ctrgcn_j.pth",
    }
    torch.save(official(model), out["ctrgcn"])
    torch.save(official(model, "module."), out["dataparallel"])
    torch.save(pyskl(model), out["pyskl"])
    return out


@pytest.mark.parametrize("name, source", [("ctrgcn", CTRGCN), ("dataparallel", CTRGCN), ("pyskl", PYSKL)])
def test_each_format_reads_back_our_tensors_and_shape(files, joint_run, name, source):
    ckpt = load_checkpoint(joint_run / "last.pt")
    w = load_weights(files[name])
    assert isinstance(w, PublishedWeights) and w.source == source
    backbone = {k: v for k, v in ckpt.model.items() if k.startswith("backbone.")}
    assert sorted(w.model) == sorted(backbone)
    for k, v in backbone.items():
        assert torch.equal(w.model[k], v), k
    b = ckpt.spec.model.backbone
    assert (w.backbone.num_class, w.backbone.graph, w.backbone.num_person, w.backbone.base_channel) == (
        b.num_class,
        b.graph,
        b.num_person,
        b.base_channel,
    )
    assert w.dropped == (("backbone.A",) if source == PYSKL else ())


def test_pyskl_topology_maps_onto_ours_exactly():
    """pyskl's CTRGC (einsum 'ncuv,nctu->nctv', its formula below) with its weights equals ours with
    the mapped ones: conv1 <-> conv2, conv4's weight negated, the adjacency transposed."""
    torch.manual_seed(0)
    c_in, c_out, v = 64, 24, 25  # 64: both give 8 relation channels (pyskl: 8 up to 16 inputs)
    theirs = nn.ModuleDict(
        {
            f"conv{i}": nn.Conv2d(*io, 1)
            for i, io in zip((1, 2, 3, 4), ((c_in, 8), (c_in, 8), (c_in, c_out), (8, c_out)))
        }
    )
    x, a, alpha = torch.randn(2, c_in, 7, v), torch.rand(v, v), torch.tensor([0.7])

    x1, x2, x3 = theirs["conv1"](x).mean(-2), theirs["conv2"](x).mean(-2), theirs["conv3"](x)
    topology = theirs["conv4"](torch.tanh(x1.unsqueeze(-1) - x2.unsqueeze(-2))) * alpha + a[None, None]
    expected = torch.einsum("ncuv,nctu->nctv", topology, x3)

    ours = CTRGC(c_in, c_out)
    state = {f"backbone.net.0.gcn1.convs.0.{k}": t for k, t in theirs.state_dict().items()}
    state |= {"backbone.net.0.gcn1.A": a[None], "backbone.net.0.gcn1.convs.0.conv3.weight": theirs["conv3"].weight}
    mapped, _ = from_pyskl(state)
    prefix = "backbone.l1.gcn1.convs.0."
    ours.load_state_dict({k.removeprefix(prefix): t for k, t in mapped.items() if k.startswith(prefix)})
    got = ours(x, mapped["backbone.l1.gcn1.PA"][0], alpha)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["dataparallel", "pyskl"])
def test_init_from_a_published_file_loads_every_backbone_tensor(files, skeleton_cache, tmp_path, capsys, name):
    train(skeleton_cache, tmp_path / "run", *SKELETON_ONLY, *ONE_EPOCH, "--init-from", str(files[name]))
    out = capsys.readouterr().out
    n = len(load_weights(files[name]).model)
    assert f"a published {CTRGCN if name != 'pyskl' else PYSKL} checkpoint" in out
    assert f"--init-from {files[name]}: {n} tensors loaded, 0 re-initialised" in out
    assert ("not used: 1 keys of the file" in out) == (name == "pyskl")


def test_mmcl_test_scores_a_published_file_as_the_same_checkpoint(files, joint_run, skeleton_cache, tmp_path):
    """A pyskl file of our run's weights scores as our checkpoint does at CTR-GCN's test-time
    input (window 64), which `mmcl test` applies to files that record none."""
    ours = load_checkpoint(joint_run / "last.pt")
    ours.spec = dataclasses.replace(ours.spec, input=dataclasses.replace(ours.spec.input, window=64))
    ours.config["window"] = 64
    ours.save(tmp_path / "ours-64.pt")
    invoke("test", "--checkpoint", tmp_path / "ours-64.pt", "--out", tmp_path / "a", "--device", "cpu")
    result = invoke(
        "test", "--checkpoint", files["pyskl"], "--cache", skeleton_cache, "--out", tmp_path / "b", "--device", "cpu"
    )
    assert "a published pyskl checkpoint" in result.output
    a, b = np.load(tmp_path / "a" / "scores.npz"), np.load(tmp_path / "b" / "scores.npz")
    assert a["names"].tolist() == b["names"].tolist()
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-4, atol=1e-4)
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["stream"] == "joint"


def test_published_files_that_cannot_be_used_fail_naming_the_file(files, joint_run, skeleton_cache, tmp_path):
    result = invoke("test", "--checkpoint", files["ctrgcn"], ok=False)
    assert isinstance(result.exception, MMCLError) and "pass --cache" in str(result.exception)
    model = dict(official(load_checkpoint(joint_run / "last.pt").model))
    model["fc.weight"], model["fc.bias"] = model["fc.weight"][:5], model["fc.bias"][:5]
    torch.save(model, tmp_path / "five.pt")
    result = invoke("test", "--checkpoint", tmp_path / "five.pt", "--cache", skeleton_cache, ok=False)
    assert "five.pt predicts 5 classes" in str(result.exception)
    torch.save({"state_dict": {"backbone.gcn.0.conv.weight": torch.zeros(1)}}, tmp_path / "stgcn.pth")
    with pytest.raises(MMCLError, match="stgcn.pth: an mmcv/pyskl checkpoint of another backbone"):
        load_weights(tmp_path / "stgcn.pth")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(MMCLError, match="other.pt: not a checkpoint this project reads .*pyskl"):
        load_weights(tmp_path / "other.pt")
