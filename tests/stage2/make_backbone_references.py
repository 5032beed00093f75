"""Run the official HD-GCN, ST-GCN++ and ProtoGCN forwards once and write data/backbones/*.pt.

    PYTHONPATH=tests/stage2:<einops> python tests/stage2/make_backbone_references.py \
        --hdgcn <Jho-Yonsei/HD-GCN checkout> --pyskl <kennymckormick/pyskl> --protogcn <firework8/ProtoGCN>

Checked out at HD-GCN 672da2c, pyskl 3f6795f, ProtoGCN ddf7f27. The official model files are
executed as released; what they import and this machine lacks is shimmed, nothing else:
- mmcv (pyskl, ProtoGCN): `build_norm_layer('BN')` -> BatchNorm2d, `build_activation_layer('ReLU')`,
  and registries whose `register_module` is a no-op; `load_checkpoint` is never called.
- HD-GCN: `graph/__init__.py` names modules the release lacks, so `graph` is set up as a bare
  package; `x.get_device()` is -1 on CPU (the release assumes CUDA), so it answers "cpu".
- The heads (pyskl's GCNHead, ProtoGCN's SimpleHead: pool over time and joints, mean over persons,
  `fc_cls`) are restated here in those few lines; the backbones and ProtoGCN's contrastive loss
  run as released (the loss in float32: it casts its masks with `.float()`).
Needs einops (HD-GCN) on the path; torch as the project's.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import types
from pathlib import Path

import torch
from backbone_reference import DATA, NUM_CLASS, SEED, reference_input, reference_weights
from torch import nn


def load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def package(name: str, path: Path | None = None, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = [str(path)] if path else []
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


class Registry:
    def register_module(self, *args, **kwargs):
        return (lambda cls: cls) if not args else args[0]


def shim_mmcv() -> None:
    def build_norm_layer(cfg, channels):
        assert cfg["type"] == "BN", cfg
        return "bn", nn.BatchNorm2d(channels)

    def build_activation_layer(cfg):
        assert cfg["type"] == "ReLU", cfg
        return nn.ReLU()

    package("mmcv")
    package(
        "mmcv.cnn",
        build_norm_layer=build_norm_layer,
        build_activation_layer=build_activation_layer,
        normal_init=lambda module, std=0.01: None,
    )
    package("mmcv.runner", load_checkpoint=lambda *a, **k: None)


def pyskl_family(root: Path, top: str, backbone_file: str, graph_file: Path) -> types.ModuleType:
    """Load `top`.models.gcns.<backbone_file> with its utils package, as released."""
    graph = load_file(f"{top}.utils.graph", graph_file)
    package(top)
    package(f"{top}.utils", Graph=graph.Graph, cache_checkpoint=lambda x: x)
    package(f"{top}.models")
    package(f"{top}.models.builder", BACKBONES=Registry(), HEADS=Registry())
    gcns = root / top / "models" / "gcns"
    package(f"{top}.models.gcns", gcns)
    utils = package(f"{top}.models.gcns.utils", gcns / "utils")
    for part in ("init_func", "gcn", "tcn"):
        module = load_file(f"{top}.models.gcns.utils.{part}", gcns / "utils" / f"{part}.py")
        utils.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("_")})
    return load_file(f"{top}.models.gcns.{backbone_file}", gcns / f"{backbone_file}.py")


def head(x: torch.Tensor, fc: nn.Linear) -> torch.Tensor:
    """GCNHead / SimpleHead in GCN mode: (N, M, C, T, V) -> pool T, V -> mean M -> fc."""
    return fc(x.mean(dim=(3, 4)).mean(dim=1))


def with_weights(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Fill `model` with `reference_weights` of its state dict's names; float64, eval mode."""
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    weights = reference_weights(shapes)
    # HD-GCN's state dict lists its last level's branches twice (`gcn1.conv_d.*` is `gcn1.conv.<last>.*`):
    # one tensor, so both names must carry the same draw (the later would win on loading).
    for key in list(weights):
        if ".gcn1.conv_d." in key:
            prefix, rest = key.split(".gcn1.conv_d.")
            last = max(int(k.split(".gcn1.conv.")[1].split(".")[0]) for k in weights if ".gcn1.conv." in k)
            weights[key] = weights[f"{prefix}.gcn1.conv.{last}.{rest}"]
    model.double().eval()
    model.load_state_dict(weights, strict=True)
    return shapes


def make_hdgcn(root: Path) -> dict:
    sys.path.insert(0, str(root))
    package("audioop", reverse=None)  # graph/ntu_rgb_d_hierarchy.py imports it and never uses it
    package("graph", root / "graph")
    import graph.ntu_rgb_d_hierarchy
    import graph.tools  # noqa: F401

    get_device = torch.Tensor.get_device
    torch.Tensor.get_device = lambda self: "cpu" if self.device.type == "cpu" else get_device(self)
    from model.HDGCN import Model

    torch.manual_seed(SEED)
    model = Model(
        num_class=NUM_CLASS,
        num_point=25,
        num_person=2,
        graph="graph.ntu_rgb_d_hierarchy.Graph",
        graph_args={"labeling_mode": "spatial", "CoM": 21},
    )
    shapes = with_weights(model)
    x = reference_input()
    with torch.no_grad():
        logits = model(x)
    return {"kind": "hdgcn", "shapes": shapes, "x": x, "logits": logits, "config": {"center_of_mass": 21}}


def make_stgcnpp(root: Path) -> dict:
    stgcn = pyskl_family(root, "pyskl", "stgcn", root / "pyskl" / "utils" / "graph.py")
    torch.manual_seed(SEED)
    backbone = stgcn.STGCN(
        graph_cfg=dict(layout="nturgb+d", mode="spatial"), gcn_adaptive="init", gcn_with_res=True, tcn_type="mstcn"
    )
    fc = nn.Linear(256, NUM_CLASS)
    shapes = with_weights(nn.ModuleDict({"backbone": backbone, "cls_head": nn.ModuleDict({"fc_cls": fc})}))
    x = reference_input()
    with torch.no_grad():
        logits = head(backbone(x.permute(0, 4, 2, 3, 1)), fc)  # pyskl takes (N, M, T, V, C)
    return {"kind": "stgcnpp", "shapes": shapes, "x": x, "logits": logits, "config": {}}


def make_protogcn(root: Path) -> dict:
    protogcn = pyskl_family(root, "protogcn", "protogcn", root / "protogcn" / "utils" / "graph.py")
    csc = load_file("protogcn_csc", root / "protogcn" / "models" / "losses" / "Class_Specific_Contrastive_Loss.py")
    torch.manual_seed(SEED)
    backbone = protogcn.ProtoGCN(
        num_prototype=400,
        tcn_ms_cfg=[(3, 1), (3, 2), (3, 3), (3, 4), ("max", 3), "1x1"],
        graph_cfg=dict(layout="nturgb+d", mode="random", num_filter=8, init_off=0.04, init_std=0.02),
    )
    fc = nn.Linear(384, NUM_CLASS)
    loss = csc.Class_Specific_Contrastive_Loss(NUM_CLASS, 625)
    shapes = with_weights(
        nn.ModuleDict({"backbone": backbone, "cls_head": nn.ModuleDict({"fc_cls": fc, "csc_loss": loss})})
    )
    memory = torch.randn(
        loss.h_channel, NUM_CLASS, generator=torch.Generator().manual_seed(SEED + 1), dtype=torch.float64
    )
    loss.avg_f = memory.clone()
    x = reference_input()
    labels = torch.tensor([1, 3])
    with torch.no_grad():
        feats, graph = backbone(x.permute(0, 4, 2, 3, 1))
        logits = head(feats, fc)
        # The loss on scores the classifier gets right for sample 0 only: one class's centroid moves.
        logits_for_loss = logits.clone()
        logits_for_loss[0, 1] = logits.max() + 1.0
        logits_for_loss[1, 3] = logits.min() - 1.0
        # The official loss casts its masks with .float(): it runs in float32 only.
        loss.float()
        loss.avg_f = memory.float()
        contrastive = loss(graph.float(), labels, logits_for_loss.float())
    return {
        "kind": "protogcn",
        "shapes": shapes,
        "x": x,
        "logits": logits,
        "graph": graph,
        "labels": labels,
        "logits_for_loss": logits_for_loss,
        "memory": memory,
        "memory_after": loss.avg_f,
        "contrastive": contrastive,
        "config": {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hdgcn", type=Path, required=True)
    parser.add_argument("--pyskl", type=Path, required=True)
    parser.add_argument("--protogcn", type=Path, required=True)
    args = parser.parse_args()
    shim_mmcv()
    DATA.mkdir(parents=True, exist_ok=True)
    for make, root in ((make_hdgcn, args.hdgcn), (make_stgcnpp, args.pyskl), (make_protogcn, args.protogcn)):
        ref = make(root)
        torch.save(ref, DATA / f"{ref['kind']}.pt")
        print(ref["kind"], "logits", ref["logits"].tolist())


if __name__ == "__main__":
    main()
