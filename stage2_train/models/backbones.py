"""The backbone registry: each backbone's name -> its config class, model class and, where it has
one, the training-only loss module that reads `Backbone.forward_train`'s third output.

`--backbone NAME` (`ArchitectureConfig.backbone`) picks one; the config's `kind` records it in
every model spec, so checkpoints and exports rebuild the same network (`build_backbone`).
`from_official` renames a state dict laid out as the official implementation's to ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from shared.errors import MMCLError

from .backbone import Backbone
from .ctrgcn import CTRGCN
from .hdgcn import HDGCN
from .model_config import (
    BACKBONE_CONFIGS,
    BackboneConfig,
    CTRGCNConfig,
    HDGCNConfig,
    ProtoGCNConfig,
    STGCNPPConfig,
)
from .protogcn import ProtoGCN, PrototypeLoss
from .stgcnpp import STGCNPP


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    title: str  # as papers write it
    config: type
    model: type[Backbone]
    loss: type[nn.Module] | None = None  # training-only: (side output, labels, logits) -> weighted loss


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("ctrgcn", "CTR-GCN", CTRGCNConfig, CTRGCN),
        BackboneSpec("hdgcn", "HD-GCN", HDGCNConfig, HDGCN),
        BackboneSpec("stgcnpp", "ST-GCN++", STGCNPPConfig, STGCNPP),
        BackboneSpec("protogcn", "ProtoGCN", ProtoGCNConfig, ProtoGCN, PrototypeLoss),
    )
}
assert set(BACKBONES) == set(BACKBONE_CONFIGS), "every backbone config needs a registry entry"


def spec_of(config: BackboneConfig) -> BackboneSpec:
    try:
        return BACKBONES[config.kind]
    except KeyError:
        raise MMCLError(f"unknown backbone {config.kind!r}; known: {', '.join(BACKBONES)}") from None


def build_backbone(config: BackboneConfig) -> Backbone:
    return spec_of(config).model(config)


def build_backbone_loss(config: BackboneConfig) -> nn.Module | None:
    loss = spec_of(config).loss
    return None if loss is None else loss(config)


# --------------------------------------------------------------------------- official weights

# (pattern, replacement) applied in turn to each official key; a None replacement drops the key.
_HDGCN_KEYS = (
    (r"^module\.", ""),
    (r"\.gcn1\.conv_d\..*", None),  # an alias of the last level's branches
    (r"(\.tcn1\.branches\.[0-9]+\.3)\.bias$", r"\1.conv.bias"),  # the temporal conv's separate bias
)
_PYSKL_KEYS = (
    (r"^backbone\.", ""),
    (r"^cls_head\.fc_cls\.", "fc."),
)
_PROTOGCN_KEYS = (
    (r"^backbone\.(post|bn|prn)\.", r"backbone_loss.\1."),
    (r"^cls_head\.csc_loss\.cl_fc\.", "backbone_loss.cl_fc."),
    *_PYSKL_KEYS,
)
OFFICIAL_KEYS = {"hdgcn": _HDGCN_KEYS, "stgcnpp": _PYSKL_KEYS, "protogcn": _PROTOGCN_KEYS}


def _renamed(key: str, rules) -> str | None:
    """`key` after every rule in turn; None once a rule drops it."""
    for pattern, replacement in rules:
        if re.search(pattern, key):
            if replacement is None:
                return None
            key = re.sub(pattern, replacement, key)
    return key


def from_official(kind: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An official implementation's state dict (HD-GCN's `Model`, pyskl's or ProtoGCN's recognizer)
    with `MMCLModel`'s names and shapes: `backbone.*`, and ProtoGCN's training-only
    `backbone_loss.*`."""
    if kind not in OFFICIAL_KEYS:
        raise MMCLError(f"no official weight layout for backbone {kind!r}; known: {', '.join(OFFICIAL_KEYS)}")
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        ours = _renamed(key, OFFICIAL_KEYS[kind])
        if ours is None:
            continue
        if kind == "hdgcn" and ours.endswith(".conv.bias") and value.dim() == 4:
            value = value.flatten()  # (1, C, 1, 1) -> (C,)
        out[ours if ours.startswith("backbone_loss.") else f"backbone.{ours}"] = value
    return out
