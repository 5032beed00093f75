"""A trained model's description, as Hugging Face's config.json is: what the network is, what input
it takes, which classes it predicts and which features it was trained against.

`ModelSpec` is saved inside every checkpoint (`checkpoint.Checkpoint`) and every export card
(`export.ModelCard`) as a plain dict of builtins (`to_dict`), so `torch.load(weights_only=True)`
and `json` read it; `from_dict` gives it back typed. `spec_from_run` builds it from the resolved
TrainConfig and the training data in one place. Later commands (test, export, predict, zero-shot,
--init-from) build the network (`model`), the test-time input pipeline (`InputSpec.pipeline`) and
the joint mapping of other skeletons (`InputSpec.mapping_from`) from the spec alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from shared.layouts import get_layout
from shared.registry import DATASETS

from .model_config import MMCLModelConfig, backbone_config
from ..data.input_layout import InputLayout, map_input
from ..data.augment_config import AugmentConfig
from ..data.transforms import InputPipeline

FORMAT = "mmcl-model-spec-1"


@dataclass(frozen=True)
class InputSpec:
    """The network's input: skeleton layout, persons, joints, window, stream and how a raw
    sequence is cropped, augmented and centred (on `origin_joint`) before it."""

    layout: str
    num_person: int
    num_point: int
    channels: int  # coordinates per joint in the stream (3)
    window: int
    stream: str
    augment: str  # feeder variant: "crop-rotate" (centre crop + resize at test) or "ucla-view"
    test_crop: float  # centre-crop ratio of the valid frames (crop-rotate)
    origin_joint: int  # 0-based joint of actor 1's first real frame that becomes the origin (the layout's centre)
    # windows per sample `mmcl test` averages (pyskl's clips, data.clip_sampling); `pipeline` is one window.
    # Specs saved before the setting existed read 1.
    test_clips: int = 1

    def pipeline(self) -> InputPipeline:
        """Padded raw batch (in this layout) -> the network's input, exactly as `mmcl test` prepares it."""
        aug = AugmentConfig(window=self.window, kind=self.augment, test_crop=self.test_crop)
        return InputPipeline(aug, train=False, stream=self.stream, layout=get_layout(self.layout))

    def mapping_from(self, source: str, source_persons: int) -> InputLayout:
        """How skeletons in layout `source` with up to `source_persons` persons reach this input
        (raises input_layout.NoLayoutMap / TooManyPersons)."""
        return map_input(source, source_persons, self.layout, self.num_person)


@dataclass(frozen=True)
class FeatureIdentity:
    """The cached RGB/text features a model was trained against (models, prompts, questions)."""

    name: str
    path: str
    attrs: dict[str, str | int | float | bool]  # the feature file's attributes: models, prompts
    questions: list[str]
    rgb_dim: int | None  # None: not read (FAM off)
    text_dim: int | None  # None: not read (FRM off)


@dataclass(frozen=True)
class ModelSpec:
    model: MMCLModelConfig | None  # None only in export cards of format mmcl-export-1, which lack it
    input: InputSpec
    dataset: str
    protocol: str | None
    class_names: list[str]
    ntu_ids: list[int | None]  # each class's NTU RGB+D 120 action id, where it has one
    features: FeatureIdentity | None = None
    format: str = FORMAT

    @property
    def num_class(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"model spec format {found!r}, {FORMAT} expected")
        features = d.get("features")
        return cls(
            model=None if d["model"] is None else model_config_from_dict(d["model"]),
            input=InputSpec(**d["input"]),
            dataset=d["dataset"],
            protocol=d.get("protocol"),
            class_names=list(d["class_names"]),
            ntu_ids=list(d["ntu_ids"]),
            features=None if features is None else FeatureIdentity(**features),
        )


def model_config_from_dict(d: dict[str, Any]) -> MMCLModelConfig:
    """The model config saved by `to_dict`; a backbone without `kind` (specs before backbones
    were selectable) is CTR-GCN."""
    names = {f.name for f in fields(MMCLModelConfig)}
    d = {k: v for k, v in d.items() if k in names}
    backbone = dict(d["backbone"])
    return MMCLModelConfig(**{**d, "backbone": backbone_config(backbone.pop("kind", "ctrgcn"), **backbone)})


def ntu_ids_of(dataset: str, class_names: list[str]) -> list[int | None]:
    """The registry's NTU ids of `dataset`'s classes; None for each when the names differ."""
    spec = DATASETS.get(dataset)
    if spec is not None and spec.class_names == list(class_names):
        return [c.ntu_id for c in spec.classes]
    return [None] * len(class_names)


def plain_attrs(attrs: dict) -> dict[str, str | int | float | bool]:
    """HDF5 attributes (numpy scalars and arrays) as JSON-safe values for the checkpoint."""

    def plain(v):
        if isinstance(v, (np.generic,)):
            return v.item()
        if isinstance(v, (str, int, float, bool)):
            return v
        return json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, default=str)

    return {str(k): plain(v) for k, v in attrs.items()}


def spec_from_run(cfg, model: MMCLModelConfig, data) -> ModelSpec:
    """The spec of a model trained with the resolved TrainConfig `cfg` on `data` (run_data.Data)."""
    f = data.features
    return ModelSpec(
        model=model,
        input=InputSpec(
            layout=data.layout.name,
            num_person=int(data.num_person),
            num_point=int(data.layout.num_joints),
            channels=int(model.backbone.in_channels),
            window=int(cfg.augment.window),
            stream=cfg.data.stream,
            augment=cfg.augment.kind,
            test_crop=float(cfg.augment.test_crop),
            origin_joint=int(data.layout.center),
            test_clips=int(cfg.augment.test_clips),
        ),
        dataset=data.skeletons.dataset,
        protocol=cfg.data.protocol,
        class_names=list(data.class_names),
        ntu_ids=[c.ntu_id for c in data.skeletons.spec.classes],
        features=None
        if f is None
        else FeatureIdentity(
            name=f.name,
            path=str(f.path),
            attrs=plain_attrs(f.attrs),
            questions=list(f.questions),
            rgb_dim=f.rgb_dim,
            text_dim=f.text_dim,
        ),
    )
