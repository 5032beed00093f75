"""Published CTR-GCN weights: the official repository's checkpoints and pyskl's, read in this
project's model keys, so `mmcl train --init-from` and `mmcl test --checkpoint` take them.

`load_weights(path)` returns our own `Checkpoint`, or `PublishedWeights` for these two layouts:

- CTR-GCN (github.com/Uason-Chen/CTR-GCN, `model.ctrgcn.Model`): a plain state dict whose keys
  are ours without `backbone.` (`data_bn.*`, `l1`..`l10.*`, `fc.*`); saved from DataParallel,
  each key starts with `module.`.
- pyskl (github.com/kennymckormick/pyskl, its CTRGCN backbone + GCNHead): an mmcv checkpoint
  {"meta", "state_dict", ...} with `backbone.data_bn.*`, `backbone.net.I.*` (our block l<I+1>)
  and `cls_head.fc_cls.*` (our `backbone.fc.*`). pyskl's graph convolution applies its topology
  transposed (einsum 'ncuv,nctu->nctv', ours and the reference's 'ncuv,nctv->nctu'); its blocks
  map exactly onto ours by transposing the learned adjacency (`gcn1.A` -> `gcn1.PA`), swapping
  the two joint embeddings (conv1 <-> conv2) and negating conv4's weight (tanh is odd). Its fixed
  graph buffer `backbone.A` has no counterpart.

- HD-GCN (github.com/Jho-Yonsei/HD-GCN, `model.HDGCN.Model`): a plain state dict in the official
  layout (`backbones.from_official`), read for `mmcl train --init-from` only. It does not record
  the centre of mass its hierarchy grew from, and every choice has the same shapes, so the run
  must say it: `--backbone hdgcn --center-of-mass N` (`check_init`).

No file records its dataset, classes or stream: the shapes give the network (classes, joints,
persons, width), the layout is the one with that many joints, and `mmcl test` takes the rest
from the cache it is given and CTR-GCN's recipe (window 64; NW-UCLA 52).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError
from shared.layouts import LAYOUTS, Layout

from .checkpoint import Checkpoint, CheckpointError, RefusedPickle, read_torch_file
from ..models.mmcl_model import MMCLModel
from ..models.backbones import from_official
from ..models.model_config import UNIT_PLAN, BackboneConfig, CTRGCNConfig, HDGCNConfig, MMCLModelConfig
from ..models.model_spec import InputSpec, ModelSpec
from .weight_transfer import load_matching_weights

CTRGCN, PYSKL, HDGCN = "CTR-GCN", "pyskl", "HD-GCN"
ACCEPTED = (
    f"this project's checkpoints, official {CTRGCN} and {HDGCN} state dicts (.pt, `module.` prefixes "
    f"allowed) and {PYSKL} CTR-GCN checkpoints (.pth)"
)
# A key every network of the kind has, in each layout.
_PROBE = {
    CTRGCN: "l1.gcn1.convs.0.conv3.weight",
    PYSKL: "backbone.net.0.gcn1.convs.0.conv3.weight",
    HDGCN: "l1.gcn1.conv_down.0.0.weight",
}


@dataclass(frozen=True)
class NetworkInput:
    """The input a published network takes, as far as its shapes tell (`InputSpec`'s layout and persons)."""

    layout: str
    num_person: int


@dataclass(frozen=True)
class PublishedWeights:
    """A published CTR-GCN (or HD-GCN) network's tensors under MMCLModel's keys (`backbone.*`)."""

    path: Path
    source: str  # CTRGCN, PYSKL or HDGCN
    model: dict[str, torch.Tensor]
    backbone: BackboneConfig  # read from the tensors' shapes (HD-GCN's centre of mass: not known)
    dropped: tuple[str, ...]  # keys of the file with no counterpart here

    @property
    def input(self) -> NetworkInput:
        return NetworkInput(self.backbone.graph, self.backbone.num_person)

    def notes(self) -> list[str]:
        b = self.backbone
        how = {
            CTRGCN: "keys without `backbone.`",
            HDGCN: "the official Model's keys; its centre of mass as --center-of-mass says",
            PYSKL: "backbone.net.I -> backbone.l<I+1>, cls_head.fc_cls -> backbone.fc, topology transposed",
        }[self.source]
        lines = [
            f"{self.path}: a published {self.source} checkpoint ({how}): {b.num_class} classes, {b.graph} "
            f"({b.num_point} joints), {b.num_person} persons, base channel {b.base_channel}"
        ]
        if self.dropped:
            lines.append(
                f"  not used: {len(self.dropped)} keys of the file with no counterpart here "
                f"({', '.join(self.dropped[:4])}{', ...' if len(self.dropped) > 4 else ''})"
            )
        return lines

    def as_checkpoint(self, dataset_dir: Path, stream: str | None) -> Checkpoint:
        """The checkpoint `mmcl test` evaluates on the cache `dataset_dir`: its dataset's classes (the
        file must predict as many), `stream` (default joint) and CTR-GCN's recipe for the rest."""
        from .config import resolve_config

        if self.source == HDGCN:
            raise CheckpointError(
                f"{self.path}: an official HD-GCN state dict, which does not record its centre of "
                f"mass: evaluate it by `mmcl train --init-from {self.path} --backbone hdgcn "
                f"--center-of-mass N --epochs 0 --cache ...` (N as it was trained: 1, 2 or 21)"
            )
        skeletons = SkeletonCache(dataset_dir)
        spec_ds = skeletons.spec
        b = self.backbone
        if b.num_class != spec_ds.num_classes:
            raise CheckpointError(
                f"{self.path} predicts {b.num_class} classes and {spec_ds.title} has "
                f"{spec_ds.num_classes}: evaluate it on the dataset it was trained on"
            )
        cfg = resolve_config(
            skeletons.dataset,
            {},
            {"recipe": "ctrgcn", "use_fam": False, "use_frm": False, "stream": stream, "cache": str(dataset_dir)},
        )
        cfg = cfg.replace(layout=b.graph, persons=b.num_person, base_channel=b.base_channel)
        model = MMCLModel(MMCLModelConfig(b))
        transfer = load_matching_weights(model, self.model)
        missing = {k: why for k, why in transfer.fresh.items() if not k.endswith("num_batches_tracked")}
        if missing:
            name, why = next(iter(missing.items()))
            raise CheckpointError(
                f"{self.path}: {len(missing)} tensors of CTR-GCN are missing or of another "
                f"shape (e.g. {name}: {why}); not a complete {self.source} CTR-GCN"
            )
        layout = LAYOUTS[b.graph]
        spec = ModelSpec(
            model=model.config,
            input=InputSpec(
                layout=b.graph,
                num_person=b.num_person,
                num_point=b.num_point,
                channels=b.in_channels,
                window=cfg.augment.window,
                stream=cfg.data.stream,
                augment=cfg.augment.kind,
                test_crop=cfg.augment.test_crop,
                origin_joint=layout.center,
            ),
            dataset=skeletons.dataset,
            protocol=None,
            class_names=list(spec_ds.class_names),
            ntu_ids=[c.ntu_id for c in spec_ds.classes],
        )
        return Checkpoint(spec=spec, epoch=0, config=cfg.to_dict(), model=model.state_dict())


def load_weights(path: str | Path) -> Checkpoint | PublishedWeights:
    """Our checkpoint, else a published CTR-GCN or pyskl one; anything else fails naming the file."""
    path = Path(path)
    try:
        return Checkpoint.load(path)
    except CheckpointError as ours:
        payload, refused = _plain_payload(path)
        if payload is None:  # unreadable: our message says why
            hint = _RESAVE_HINT.format(path=path) if refused else ""
            raise CheckpointError(f"{ours}; accepted: {ACCEPTED}{hint}") from None
        published = read_published(payload, path)
        if published is None:
            raise CheckpointError(f"{path}: not a checkpoint this project reads (accepted: {ACCEPTED})") from None
        return published


def network_input(weights: Checkpoint | PublishedWeights) -> InputSpec | NetworkInput:
    """What loaded --init-from weights tell about the network's input (layout, persons)."""
    return weights.spec.input if isinstance(weights, Checkpoint) else weights.input


def init_architecture(weights: Checkpoint | PublishedWeights) -> dict[str, object]:
    """The settings `--init-from` keeps unless a config file or flag says otherwise: the network's
    width (and, for our checkpoints, the backbone, FRM's vectors, dropout and the recipe it was trained with), so
    fine-tuning loads every backbone tensor instead of rebuilding another network."""
    if isinstance(weights, PublishedWeights):
        return {"base_channel": weights.backbone.base_channel, "backbone": weights.backbone.kind}
    model = weights.spec.model
    kept: dict[str, object] = {
        "backbone": model.backbone.kind,
        "base_channel": model.backbone.base_channel,
        "drop_out": model.backbone.drop_out,
    }
    if model.use_frm:
        kept["frm_vectors"] = model.frm_vectors
    recipe = (weights.config or {}).get("recipe")
    return kept | ({"recipe": recipe} if recipe else {})


_RESAVE_HINT = (
    "; a file holding Python objects besides tensors (an mmcv checkpoint's meta) can be re-saved "
    "as plain tensors by whoever trusts it: torch.save(torch.load('{path}', weights_only=False)"
    "['state_dict'], 'state_dict.pth')"
)


def _plain_payload(path: Path) -> tuple[object | None, bool]:
    """The file's contents if plain tensors and builtins, and whether it was refused for holding other objects."""
    try:
        return read_torch_file(path), False
    except RefusedPickle:
        return None, True
    except CheckpointError:
        return None, False


def read_published(payload: object, path: Path) -> PublishedWeights | None:
    """The payload in one of the published layouts (module doc), or None."""
    if not isinstance(payload, Mapping):
        return None
    if isinstance(payload.get("state_dict"), Mapping):
        state = _tensors(payload["state_dict"])
        if _PROBE[PYSKL] in state:
            model, dropped = from_pyskl(state)
            return _published(path, PYSKL, model, dropped)
        backbone = sorted({k.split(".")[1] for k in state if k.startswith("backbone.")})
        if backbone:
            raise CheckpointError(
                f"{path}: an mmcv/pyskl checkpoint of another backbone (backbone keys "
                f"{', '.join(backbone[:4])}); only CTR-GCN's loads here"
            )
        return None
    state = {k.removeprefix("module."): v for k, v in _tensors(payload).items()}
    if _PROBE[CTRGCN] in state:
        return _published(path, CTRGCN, {f"backbone.{k}": v for k, v in state.items()}, ())
    if _PROBE[HDGCN] in state:
        model = from_official("hdgcn", state)
        return PublishedWeights(path, HDGCN, model, hdgcn_config(model, path), ())
    return None


def _tensors(d: Mapping) -> dict[str, torch.Tensor]:
    return {str(k): v for k, v in d.items() if isinstance(v, torch.Tensor)}


_BLOCK = re.compile(r"backbone\.net\.(\d+)\.(.*)")
_EMBED = re.compile(r"(gcn1\.convs\.\d+\.)conv([12])\.(weight|bias)")


def from_pyskl(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """pyskl's CTR-GCN state dict -> (ours, the keys with no counterpart); see the module doc."""
    out, dropped = {}, []
    for key, value in state.items():
        block = _BLOCK.fullmatch(key)
        if key.startswith("cls_head.fc_cls."):
            out["backbone.fc." + key.removeprefix("cls_head.fc_cls.")] = value
        elif key.startswith("backbone.data_bn."):
            out[key] = value
        elif block:
            rest = block[2]
            if rest == "gcn1.A":
                rest, value = "gcn1.PA", value.transpose(-1, -2).contiguous()
            elif m := _EMBED.fullmatch(rest):
                rest = f"{m[1]}conv{3 - int(m[2])}.{m[3]}"
            elif re.fullmatch(r"gcn1\.convs\.\d+\.conv4\.weight", rest):
                value = -value
            out[f"backbone.l{int(block[1]) + 1}.{rest}"] = value
        else:
            dropped.append(key)
    return out, tuple(dropped)


def _published(path: Path, source: str, model: dict[str, torch.Tensor], dropped: tuple[str, ...]) -> PublishedWeights:
    return PublishedWeights(path, source, model, backbone_config(model, path, source), dropped)


def backbone_config(model: Mapping[str, torch.Tensor], path: Path, source: str) -> CTRGCNConfig:
    """CTR-GCN's shape from its tensors: classes (fc), width and input channels (l1), joints (the
    learned adjacency), persons (data_bn covers persons x channels x joints)."""
    needed = (
        "backbone.fc.weight",
        "backbone.l1.gcn1.convs.0.conv3.weight",
        "backbone.l1.gcn1.PA",
        "backbone.data_bn.weight",
    )
    missing = [k for k in needed if k not in model]
    if missing:
        raise CheckpointError(
            f"{path}: a {source} checkpoint without {', '.join(missing)}; only CTR-GCN "
            f"with a learned topology (adaptive, the reference's default) loads here"
        )
    base, channels = model["backbone.l1.gcn1.convs.0.conv3.weight"].shape[:2]
    joints = int(model["backbone.l1.gcn1.PA"].shape[-1])
    layout = _layout_with(joints, path)
    persons, rem = divmod(model["backbone.data_bn.weight"].numel(), int(channels) * joints)
    if rem or persons < 1 or model["backbone.fc.weight"].shape[1] != base * UNIT_PLAN[-1][0]:
        raise CheckpointError(f"{path}: tensor shapes of no CTR-GCN this project builds")
    return CTRGCNConfig(
        num_class=int(model["backbone.fc.weight"].shape[0]),
        num_point=joints,
        num_person=int(persons),
        graph=layout.name,
        in_channels=int(channels),
        base_channel=int(base),
    )


def _layout_with(joints: int, path: Path) -> Layout:
    found = [layout for layout in LAYOUTS.values() if layout.num_joints == joints]
    if not found:
        known = ", ".join(f"{n} ({layout.num_joints} joints)" for n, layout in LAYOUTS.items())
        raise CheckpointError(
            f"{path}: a network on {joints} joints, a skeleton layout this project lacks (known: {known})"
        )
    return found[0]


def hdgcn_config(model: Mapping[str, torch.Tensor], path: Path) -> HDGCNConfig:
    """HD-GCN's shape from its tensors, as `backbone_config` reads CTR-GCN's; the centre of mass is
    left to the run (`check_init`), the file's tensors must all fit the network so described."""
    needed = (
        "backbone.fc.weight",
        "backbone.l1.gcn1.conv_down.0.0.weight",
        "backbone.l1.gcn1.PA",
        "backbone.data_bn.weight",
    )
    missing = [k for k in needed if k not in model]
    if missing:
        raise CheckpointError(f"{path}: an {HDGCN} state dict without {', '.join(missing)}")
    channels = int(model["backbone.l1.gcn1.conv_down.0.0.weight"].shape[1])
    joints = int(model["backbone.l1.gcn1.PA"].shape[-1])
    layout = _layout_with(joints, path)
    persons, rem = divmod(model["backbone.data_bn.weight"].numel(), channels * joints)
    num_class, width = (int(n) for n in model["backbone.fc.weight"].shape)
    try:
        config = HDGCNConfig(
            num_class=num_class,
            num_point=joints,
            num_person=int(persons),
            graph=layout.name,
            in_channels=channels,
            base_channel=width // UNIT_PLAN[-1][0],
        )
    except MMCLError:
        config = None
    bad = _misfits(model, config) if config is not None and not rem else ["(its widths)"]
    if bad:
        raise CheckpointError(f"{path}: tensor shapes of no {HDGCN} this project builds ({bad[0]})")
    return config


def _misfits(model: Mapping[str, torch.Tensor], config: BackboneConfig) -> list[str]:
    """`name: shape in the file, shape here` for each tensor of `model` that the network `config`
    describes lacks or holds in another shape, and each of the network's the file lacks."""
    ours = {k: tuple(v.shape) for k, v in MMCLModel(MMCLModelConfig(config)).state_dict().items()}
    bad = [
        f"{k}: {tuple(v.shape)} in the file, {ours.get(k, 'absent')} here"
        for k, v in model.items()
        if ours.get(k) != tuple(v.shape)
    ]
    return bad + [f"{k}: not in the file" for k in ours if k not in model and not k.endswith("num_batches_tracked")]


def check_init(weights: Checkpoint | PublishedWeights, cfg, sources: Mapping[str, str]) -> None:
    """Refuse, in one line and before anything is written, an official HD-GCN state dict the run
    cannot take as it is: another --backbone, no --center-of-mass (the file does not record it and
    every choice has the same shapes), or a network of other shapes (--base-channel, --layout,
    --persons). `cfg`: the resolved TrainConfig, its input layout filled in."""
    if not isinstance(weights, PublishedWeights) or weights.source != HDGCN:
        return
    what = f"--init-from {weights.path}: an official {HDGCN} state dict"
    if cfg.model.backbone != "hdgcn":
        raise MMCLError(f"{what}; --backbone {cfg.model.backbone} cannot take it (use --backbone hdgcn)")
    if not sources["center_of_mass"].startswith(("flag", "config file")):
        raise MMCLError(
            f"{what} does not record the centre of mass its hierarchy grew from (every choice has the "
            f"same shapes): pass --center-of-mass N as it was trained (the official configs: 1, 2, 21)"
        )
    b = weights.backbone
    layout = LAYOUTS[cfg.data.layout]
    here = dataclasses.replace(
        b,
        num_point=layout.num_joints,
        num_person=cfg.data.persons,
        graph=layout.name,
        base_channel=cfg.model.base_channel or b.base_channel,
        center_of_mass=cfg.model.center_of_mass,
    )
    bad = _misfits(weights.model, here)
    if bad:
        raise MMCLError(
            f"{what} of shapes this network does not have ({len(bad)} tensors, e.g. {bad[0]}); "
            f"its network: base channel {b.base_channel}, {b.graph}, {b.num_person} persons"
        )
