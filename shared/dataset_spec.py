"""What a dataset is, as data: its classes, train/test protocols, sample metadata and file naming.

`shared.registry` holds the built-in datasets made of these; `dataset_from_card` rebuilds one from
the card a cache stores (a custom dataset trains from its cache alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources

from .errors import MMCLError
from .layouts import Layout, get_layout
from .sample_names import name_problem


@dataclass(frozen=True)
class ClassInfo:
    action: int  # the number in the dataset's file names (NTU A013 -> 13, NW-UCLA a08 -> 8)
    name: str
    ntu_id: int | None  # the NTU RGB+D 120 action id of the same action, where there is one


@dataclass(frozen=True)
class Protocol:
    """A train/test split: a sample trains when its `field` value is in `train_values`, or, for a
    split listed sample by sample (a custom dataset's manifest), when its name is in `train_names`."""

    name: str
    field: str = ""  # one of SampleMeta's integer fields
    train_values: frozenset[int] = frozenset()
    train_names: frozenset[str] | None = None

    def is_train(self, meta: "SampleMeta") -> bool:
        if self.train_names is not None:
            return meta.name in self.train_names
        return getattr(meta, self.field) in self.train_values


@dataclass(frozen=True)
class SampleMeta:
    name: str
    action: int
    subject: int = -1
    camera: int = -1  # NTU camera, NW-UCLA view
    setup: int = -1
    replication: int = -1  # NTU replication, UTD trial, NW-UCLA environment


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    classes: tuple[ClassInfo, ...]
    layout_name: str
    num_person: int
    protocols: tuple[Protocol, ...]
    name_regex: str  # named groups: action, subject, camera, setup, replication
    skeleton_format: str  # "ntu" | "ucla_json" | "utd_mat" | "sysu_mat" | "by_suffix" (custom datasets)
    skeleton_dirs: tuple[str, ...]  # candidate folders under the root, first existing one wins
    video_dirs: tuple[str, ...]  # candidate folders for RGB videos or frame folders
    video_pattern: str  # file (or frame folder) name of a sample's video, from {name}
    color_resolution: tuple[int, int] | None = None  # what colour coordinates refer to
    missing_list: str | None = None  # file in shared/data listing samples without skeletons
    setups: frozenset[int] | None = None  # NTU60 is setups 1-17 of the NTU120 release
    notes: str = ""
    num_frames_hint: int = field(default=300, compare=False)
    manifest: str | None = None  # a custom dataset's manifest file (shared.custom_dataset): its samples

    @property
    def layout(self) -> Layout:
        return get_layout(self.layout_name)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def protocol_names(self) -> list[str]:
        return [p.name for p in self.protocols]

    def protocol(self, name: str | None) -> Protocol:
        if name is None:
            return self.protocols[0]
        for p in self.protocols:
            if p.name == name:
                return p
        raise MMCLError(
            f"dataset {self.name!r} has no protocol {name!r}; choose one of: {', '.join(self.protocol_names)}"
        )

    def label_of_action(self, action: int) -> int:
        for i, c in enumerate(self.classes):
            if c.action == action:
                return i
        raise MMCLError(f"{self.name}: action {action} is not one of this dataset's classes")

    def parse_name(self, name: str) -> SampleMeta | None:
        """SampleMeta from a sample name, or None when the name is not this dataset's (or cannot
        name a file: see `sample_names`)."""
        m = re.fullmatch(self.name_regex, name)
        if m is None or name_problem(name) is not None:
            return None
        values = {k: int(v) for k, v in m.groupdict().items() if v is not None}
        meta = SampleMeta(name=name, **values)
        if self.setups is not None and meta.setup not in self.setups:
            return None
        if not any(c.action == meta.action for c in self.classes):
            return None
        return meta

    def missing_samples(self) -> frozenset[str]:
        if self.missing_list is None:
            return frozenset()
        text = resources.files("shared.data").joinpath(self.missing_list).read_text()
        return frozenset(line.strip() for line in text.splitlines() if line.strip())

    def class_index_by_ntu_id(self) -> dict[int, int]:
        return {c.ntu_id: i for i, c in enumerate(self.classes) if c.ntu_id is not None}

    def card(self) -> str:
        """What stage 2 needs of the dataset, as JSON: skeletons.h5 stores it, so that a dataset the
        registry does not know (a custom one) trains, predicts and evaluates from its cache alone."""
        return json.dumps(
            {
                "title": self.title,
                "layout": self.layout_name,
                "num_person": self.num_person,
                "classes": [[c.action, c.name, c.ntu_id] for c in self.classes],
                "protocols": self.protocol_names,
                "color_resolution": list(self.color_resolution) if self.color_resolution else None,
            }
        )


def dataset_from_card(name: str, card: str, splits: Mapping[str, Sequence[bool]], names: list[str]) -> DatasetSpec:
    """The DatasetSpec a cache's card describes; its protocols list the cache's own training
    samples (`splits`: protocol -> is_train per sample, `names`: the samples)."""
    d = json.loads(card)
    protocols = tuple(
        Protocol(p, train_names=frozenset(n for n, t in zip(names, splits[p]) if t)) for p in d["protocols"]
    )
    return DatasetSpec(
        name=name,
        title=d["title"],
        classes=tuple(ClassInfo(int(a), str(n), i) for a, n, i in d["classes"]),
        layout_name=d["layout"],
        num_person=int(d["num_person"]),
        protocols=protocols,
        name_regex=r".+",
        skeleton_format="by_suffix",
        skeleton_dirs=(),
        video_dirs=(),
        video_pattern="{name}",
        color_resolution=tuple(d["color_resolution"]) if d["color_resolution"] else None,
    )
