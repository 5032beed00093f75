"""The network's configuration, torch-free (as Hugging Face keeps configuration_*.py apart from
modeling_*.py): each skeleton backbone's shapes (CTR-GCN, HD-GCN, ST-GCN++, ProtoGCN), FAM's and
FRM's, the MMCL model they make up, and the architecture choices a training run makes
(`ArchitectureConfig`; the data sets the rest).

Every backbone config carries `kind`, its name in `BACKBONE_CONFIGS` (and `backbones.BACKBONES`),
so a saved spec says which network it describes; specs without one are CTR-GCN's.

Each default is written here once: the training config and the model specs refer to these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from shared.errors import MMCLError
from shared.layouts import get_layout

from ..settings import AT_LEAST_ONE, FRACTION, between, bound, check_fields, setting

# Reference layout: 10 units as (out = base_channel * multiplier, temporal stride).
UNIT_PLAN: tuple[tuple[int, int], ...] = (
    (1, 1),
    (1, 1),
    (1, 1),
    (1, 1),
    (2, 2),
    (2, 1),
    (2, 1),
    (4, 2),
    (4, 1),
    (4, 1),
)


def check_layout(model: str, graph: str, num_point: int) -> None:
    """The layout exists and has `num_point` joints, or MMCLError naming `model`."""
    try:
        layout = get_layout(graph)
    except KeyError as err:
        raise MMCLError(f"{model} config: {err.args[0]}") from None
    if layout.num_joints != num_point:
        raise MMCLError(f"{model} config: num_point={num_point} but layout {graph!r} has {layout.num_joints} joints")


def check_width(model: str, base_channel: int, multiple: int, why: str) -> None:
    if base_channel < multiple or base_channel % multiple:
        raise MMCLError(
            f"{model} config: base_channel={base_channel} must be a positive multiple of {multiple} ({why})"
        )


@dataclass(frozen=True)
class CTRGCNConfig:
    num_class: int
    num_point: int
    num_person: int
    graph: str  # layout name in shared.layouts ("ntu25", "kinect_v1")
    in_channels: int = 3
    drop_out: float = 0.0
    adaptive: bool = True  # learn the shared topology PA (reference default) or keep A fixed
    graph_mode: str = "spatial"
    base_channel: int = 64  # 64 in the reference; smaller only for fast tests
    kind: str = field(default="ctrgcn", init=False)

    def __post_init__(self) -> None:
        check_layout("CTR-GCN", self.graph, self.num_point)
        check_width("CTR-GCN", self.base_channel, 4, "the multi-scale TCN splits channels over 4 branches")

    @property
    def feature_dim(self) -> int:
        """Width of the pooled last-layer feature (256 in the reference)."""
        return self.base_channel * UNIT_PLAN[-1][0]


# Stage plan of the pyskl-style backbones (ST-GCN++, ProtoGCN): 10 blocks, channels x2 and frames
# /2 entering blocks 5 and 8 (1-based, as pyskl's inflate_stages and down_stages).
PYSKL_STAGES = 10
PYSKL_INFLATE = (5, 8)
PYSKL_DOWN = (5, 8)


def pyskl_plan(base_channel: int) -> tuple[tuple[int, int], ...]:
    """(out channels, temporal stride) of each of the 10 blocks."""
    plan, width = [], base_channel
    for stage in range(1, PYSKL_STAGES + 1):
        width *= 2 if stage in PYSKL_INFLATE else 1
        plan.append((width, 2 if stage in PYSKL_DOWN else 1))
    return tuple(plan)


@dataclass(frozen=True)
class STGCNPPConfig:
    """ST-GCN++ (Duan et al., pyskl 2022): pyskl's STGCN built with `gcn_adaptive='init'`,
    `gcn_with_res=True`, `tcn_type='mstcn'` (configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py)."""

    num_class: int
    num_point: int
    num_person: int
    graph: str
    in_channels: int = 3
    drop_out: float = 0.0  # GCNHead's dropout (0 in the config)
    base_channel: int = 64
    kind: str = field(default="stgcnpp", init=False)

    def __post_init__(self) -> None:
        check_layout("ST-GCN++", self.graph, self.num_point)
        check_width("ST-GCN++", self.base_channel, 1, "a width")

    @property
    def plan(self) -> tuple[tuple[int, int], ...]:
        return pyskl_plan(self.base_channel)

    @property
    def feature_dim(self) -> int:
        return self.plan[-1][0]  # 256 at base 64


# HD-GCN's default centre of mass (1-based joint) per layout: the official NTU configs use 1, 2 and
# 21 (its best single model: 21, spine shoulder); Kinect v1's analogue of 21 is 3 (shoulder centre).
HDGCN_DEFAULT_COM = {"ntu25": 21, "kinect_v1": 3}


@dataclass(frozen=True)
class HDGCNConfig:
    """HD-GCN (Lee et al., ICCV 2023): hierarchically decomposed graph convolution with attention-
    guided hierarchy aggregation, CTR-GCN's unit plan (model/HDGCN.py)."""

    num_class: int
    num_point: int
    num_person: int
    graph: str
    in_channels: int = 3
    drop_out: float = 0.0
    base_channel: int = 64
    center_of_mass: int | None = None  # 1-based joint the hierarchy grows from; None: the layout's default
    kind: str = field(default="hdgcn", init=False)

    def __post_init__(self) -> None:
        check_layout("HD-GCN", self.graph, self.num_point)
        check_width("HD-GCN", self.base_channel, 4, "the graph and temporal convolutions split channels in 4")
        if not 1 <= self.com <= self.num_point:
            raise MMCLError(
                f"HD-GCN config: center_of_mass={self.com} is not a joint of {self.graph!r} (1..{self.num_point})"
            )

    @property
    def com(self) -> int:
        if self.center_of_mass is not None:
            return self.center_of_mass
        return HDGCN_DEFAULT_COM.get(self.graph, 1)

    @property
    def feature_dim(self) -> int:
        return self.base_channel * UNIT_PLAN[-1][0]


@dataclass(frozen=True)
class ProtoGCNConfig:
    """ProtoGCN (Liu et al., CVPR 2025): motion-topology-enhanced graph convolutions on a learned
    random graph, plus a training-only prototype reconstruction of the last topology and its
    class-specific contrastive loss (configs/ntu{60,120}_xsub/j.py)."""

    num_class: int
    num_point: int
    num_person: int
    graph: str
    in_channels: int = 3
    drop_out: float = 0.0
    base_channel: int = 96
    num_filter: int = 8  # K: topologies per block (the random graph's filters)
    gcn_ratio: float = 0.125  # each topology's channels: ratio x block width
    num_prototype: int = 400  # prototypes of the reconstruction network (the configs' 400)
    loss_hidden: int = 256  # the contrastive loss's projection width
    loss_weight: float = 0.2  # the class-specific contrastive loss's weight beside CE
    loss_tau: float = 0.125
    loss_momentum: float = 0.9  # class-centroid memory update
    graph_mean: float = 0.04  # the random graph's N(mean, std^2) initialisation
    graph_std: float = 0.02
    kind: str = field(default="protogcn", init=False)

    def __post_init__(self) -> None:
        check_layout("ProtoGCN", self.graph, self.num_point)
        # the topologies' channels (K x ratio x width) are the block's width again
        check_width("ProtoGCN", self.base_channel, 8, "its 8 topologies take 1/8 of the width each")

    @property
    def plan(self) -> tuple[tuple[int, int], ...]:
        return pyskl_plan(self.base_channel)

    @property
    def feature_dim(self) -> int:
        return self.plan[-1][0]  # 384 at base 96


BackboneConfig = Union[CTRGCNConfig, HDGCNConfig, STGCNPPConfig, ProtoGCNConfig]
BACKBONE_CONFIGS: dict[str, type] = {c.kind: c for c in (CTRGCNConfig, HDGCNConfig, STGCNPPConfig, ProtoGCNConfig)}
BACKBONE_NAMES: tuple[str, ...] = tuple(BACKBONE_CONFIGS)


def backbone_config(kind: str, **values) -> BackboneConfig:
    """The config of backbone `kind` from its fields; None values take the backbone's defaults."""
    if kind not in BACKBONE_CONFIGS:
        raise MMCLError(f"unknown backbone {kind!r}; choose one of: {', '.join(BACKBONE_NAMES)}")
    return BACKBONE_CONFIGS[kind](**{k: v for k, v in values.items() if v is not None and k != "kind"})


@dataclass(frozen=True)
class FAMConfig:
    in_dim: int  # cached RGB embedding width
    hidden_dim: int
    out_dim: int  # must equal the skeleton feature width


@dataclass(frozen=True)
class FRMConfig:
    text_dim: int
    num_class: int
    num_vectors: int  # R
    hidden_dim: int


@dataclass(frozen=True)
class MMCLModelConfig:
    backbone: BackboneConfig
    use_fam: bool = False
    use_frm: bool = False
    rgb_dim: int | None = None  # width of the cached RGB embedding (needed with FAM)
    text_dim: int | None = None  # width of the cached text feature (needed with FRM)
    fam_hidden: int = 256
    frm_hidden: int = 64
    frm_vectors: int = 2  # R

    def __post_init__(self) -> None:
        if self.use_fam and not self.rgb_dim:
            raise MMCLError("model config: use_fam needs rgb_dim (the cached RGB embedding width)")
        if self.use_frm and not self.text_dim:
            raise MMCLError("model config: use_frm needs text_dim (the cached text feature width)")

    @property
    def fam(self) -> FAMConfig | None:
        if not self.use_fam:
            return None
        # FAM's output is compared with the backbone feature, so their widths must agree.
        return FAMConfig(in_dim=self.rgb_dim, hidden_dim=self.fam_hidden, out_dim=self.backbone.feature_dim)

    @property
    def frm(self) -> FRMConfig | None:
        if not self.use_frm:
            return None
        return FRMConfig(
            text_dim=self.text_dim,
            num_class=self.backbone.num_class,
            num_vectors=self.frm_vectors,
            hidden_dim=self.frm_hidden,
        )


@dataclass(frozen=True)
class ArchitectureConfig:
    """What a training run chooses about the network; classes, joints, persons and feature widths
    come from the data (`model_config`)."""

    backbone: str = setting(
        "ctrgcn",
        flag=True,
        fixed_on_resume=True,
        choices=BACKBONE_NAMES,
        help="Skeleton backbone (default {default}): FAM and FRM attach to any of them.",
    )
    use_fam: bool = setting(
        True, flag="--no-fam", switch=False, fixed_on_resume=True, help="Train without the feature alignment module."
    )
    use_frm: bool = setting(
        True, flag="--no-frm", switch=False, fixed_on_resume=True, help="Train without the feature refinement module."
    )
    frm_vectors: int = setting(
        MMCLModelConfig.frm_vectors,
        flag=True,
        fixed_on_resume=True,
        check=between(1, 1024, "the paper uses 2"),
        help="FRM's number of class-wise vectors R ({default}).",
    )
    # None: the backbone's own (64; ProtoGCN 96). Each backbone checks what its branches need.
    base_channel: int | None = setting(
        None,
        flag=True,
        recipe=True,
        fixed_on_resume=True,
        check=bound(
            lambda v: 4 <= v <= 1024 and v % 4 == 0,
            "a positive multiple of 4, at most 1024 (the paper's is 64; 1024 makes about 360M parameters)",
        ),
        help="The backbone's first width (default its own: 64, ProtoGCN 96; the demo recipe 16).",
    )
    drop_out: float = setting(CTRGCNConfig.drop_out, check=FRACTION)
    center_of_mass: int | None = setting(
        None,
        flag=True,
        fixed_on_resume=True,
        check=AT_LEAST_ONE,
        at_least=1,
        help="HD-GCN: the 1-based joint its hierarchy grows from (default 21 on NTU-25, 3 on Kinect v1).",
    )

    def __post_init__(self) -> None:
        check_fields(self)
        if self.center_of_mass is not None and self.backbone != "hdgcn":
            raise MMCLError(
                f"center_of_mass={self.center_of_mass} applies to HD-GCN only, not to backbone {self.backbone!r}"
            )

    def model_config(
        self, num_class: int, layout: str, num_point: int, num_person: int, rgb_dim: int | None, text_dim: int | None
    ) -> MMCLModelConfig:
        # center_of_mass is None for the other backbones, and backbone_config leaves None out
        backbone = backbone_config(
            self.backbone,
            num_class=num_class,
            num_point=num_point,
            num_person=num_person,
            graph=layout,
            base_channel=self.base_channel,
            drop_out=self.drop_out,
            center_of_mass=self.center_of_mass,
        )
        return MMCLModelConfig(
            backbone,
            use_fam=self.use_fam,
            use_frm=self.use_frm,
            frm_vectors=self.frm_vectors,
            rgb_dim=rgb_dim,
            text_dim=text_dim,
        )
