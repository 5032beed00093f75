"""Zero-shot's class mapping: each target class names the model's class through their NTU RGB+D
120 action ids (shared.registry; a target class without one is UNMAPPED)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.errors import MMCLError
from shared.dataset_spec import ClassInfo, DatasetSpec
from shared.registry import DATASETS

from ..training.checkpoint import CheckpointError
from ..models.model_spec import ModelSpec

UNMAPPED = -1


def checkpoint_ntu_ids(model: ModelSpec, path: Path) -> list[int | None]:
    """The NTU action id of each of the model's classes, as its spec records them (checked
    against the registry entry of the dataset it was trained on; a custom dataset's are its
    manifest's, recorded in the cache it trained on)."""
    spec = DATASETS.get(model.dataset)
    names = model.class_names
    if spec is not None and names != spec.class_names:
        raise CheckpointError(
            f"{path}: its {len(names)} class names are not those of {spec.title} "
            f"({spec.num_classes} classes); the checkpoint is from another version"
        )
    return model.ntu_ids


@dataclass(frozen=True)
class ClassMapping:
    """Target class -> checkpoint class, both as indices; UNMAPPED where there is no counterpart."""

    target: tuple[ClassInfo, ...]
    to_checkpoint: np.ndarray  # (C_target,) int64
    checkpoint_names: list[str]

    def labels(self, target_labels: np.ndarray) -> np.ndarray:
        return self.to_checkpoint[target_labels]


def class_mapping(target: DatasetSpec, model: ModelSpec, path: Path, needed: set[int]) -> ClassMapping:
    """Map every target class through its NTU id; fail when a class that has samples to score
    (`needed`, target label indices) maps to an NTU id the checkpoint lacks or holds twice."""
    ids = checkpoint_ntu_ids(model, path)
    names = model.class_names
    out = np.full(target.num_classes, UNMAPPED, np.int64)
    for t, c in enumerate(target.classes):
        if c.ntu_id is None:
            continue
        found = [k for k, i in enumerate(ids) if i == c.ntu_id]
        if len(found) == 1:
            out[t] = found[0]
        elif t in needed:
            what = "no class" if not found else f"several classes ({', '.join(names[k] for k in found)})"
            raise MMCLError(
                f"{path} ({model.dataset}, {len(names)} classes) has {what} for NTU action "
                f"A{c.ntu_id:03d}, which {target.title} class {c.action} '{c.name}' maps to; zero-shot "
                f"{target.title} needs a model trained on a dataset holding it (e.g. ntu120)"
            )
    return ClassMapping(target.classes, out, names)
