"""The network's configuration, torch-free (as Hugging Face keeps configuration_*.py apart from
modeling_*.py): CTR-GCN's, FAM's and FRM's shapes, the MMCL model they make up, and the
architecture choices a training run makes (`ArchitectureConfig`; the data sets the rest).

Each default is written here once: the training config and the model specs refer to these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import MMCLError
from shared.layouts import get_layout

from ..settings import FRACTION, between, bound

# Reference layout: 10 units as (out = base_channel * multiplier, temporal stride).
UNIT_PLAN: tuple[tuple[int, int], ...] = (
    (1, 1), (1, 1), (1, 1), (1, 1),
    (2, 2), (2, 1), (2, 1),
    (4, 2), (4, 1), (4, 1),
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

    def __post_init__(self) -> None:
        try:
            layout = get_layout(self.graph)
        except KeyError as err:
            raise MMCLError(f"CTR-GCN config: {err.args[0]}") from None
        if layout.num_joints != self.num_point:
            raise MMCLError(
                f"CTR-GCN config: num_point={self.num_point} but layout {self.graph!r} "
                f"has {layout.num_joints} joints"
            )
        if self.base_channel % 4:
            # The multi-scale TCN splits channels over 4 branches.
            raise MMCLError(f"CTR-GCN config: base_channel={self.base_channel} must be a multiple of 4")

    @property
    def feature_dim(self) -> int:
        """Width of the pooled last-layer feature (256 in the reference)."""
        return self.base_channel * UNIT_PLAN[-1][0]


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
    backbone: CTRGCNConfig
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
        return FRMConfig(text_dim=self.text_dim, num_class=self.backbone.num_class,
                         num_vectors=self.frm_vectors, hidden_dim=self.frm_hidden)


@dataclass(frozen=True)
class ArchitectureConfig:
    """What a training run chooses about the network; classes, joints, persons and feature widths
    come from the data (`model_config`)."""

    use_fam: bool = True
    use_frm: bool = True
    frm_vectors: int = field(default=MMCLModelConfig.frm_vectors, metadata=between(1, 1024, "the paper uses 2"))
    # the multi-scale TCN splits channels over 4 branches
    base_channel: int = field(default=CTRGCNConfig.base_channel,
                              metadata=bound(lambda v: 4 <= v <= 1024 and v % 4 == 0,
                                                            "a positive multiple of 4, at most 1024 (the paper's "
                                                            "is 64; 1024 makes about 360M parameters)"))
    drop_out: float = field(default=CTRGCNConfig.drop_out, metadata=FRACTION)

    def model_config(self, num_class: int, layout: str, num_point: int, num_person: int,
                     rgb_dim: int | None, text_dim: int | None) -> MMCLModelConfig:
        backbone = CTRGCNConfig(num_class=num_class, num_point=num_point, num_person=num_person, graph=layout,
                                base_channel=self.base_channel, drop_out=self.drop_out)
        return MMCLModelConfig(backbone, use_fam=self.use_fam, use_frm=self.use_frm, frm_vectors=self.frm_vectors,
                               rgb_dim=rgb_dim, text_dim=text_dim)
