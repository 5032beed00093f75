"""pyskl's skeleton annotation pickles (`ntu60_3danno.pkl`, `ntu120_3danno.pkl`): read and write.

pyskl's layout (tools/data/README.md): a dict with `split`, {split name: [frame_dir, ...]}, and
`annotations`, a list of dicts with `frame_dir` (the sample name), `label` (int), `keypoint`
(M, T, V, C) float (pyskl stores float16; its NTU files hold raw camera coordinates in metres, M
is 1 when only one actor is present), `total_frames` (T); 2D files add `keypoint_score` and
`img_shape`. Split names are `<protocol>_train` and `<protocol>_val` (xsub, xview for NTU60; xsub,
xset for NTU120): the registry's protocol names.

The file is unpickled with a loader that admits only numpy arrays and plain Python values, so a
pickle from elsewhere cannot run code. pyskl drops all-zero frames, so frame indices start afresh.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .cache_io import atomic_path, make_folder
from .errors import MMCLError
from .dataset_spec import DatasetSpec, SampleMeta
from .safe_pickle import load_plain
from .sample_names import check_sample_name

# pickle protocol of written files: loads on every Python pyskl supports (3.7+)
WRITE_PROTOCOL = 4
SPLIT_PARTS = {"train": True, "val": False, "test": False}


@dataclass
class PysklSample:
    meta: SampleMeta
    joints: np.ndarray  # (T, spec.num_person, V, 3) float32, absent persons zero


@dataclass
class PysklImport:
    """What a pickle yields for one dataset: its samples in file order and those it could not use."""

    samples: list[PysklSample] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (frame_dir or #index, reason)
    ignored_splits: list[str] = field(default_factory=list)  # not one of the dataset's protocols


def load_pickle(path: Path) -> dict:
    data = load_plain(path, "a pyskl annotation pickle")
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise MMCLError(
            f"{path}: not a pyskl annotation pickle (expected a dict with 'split' and "
            f"'annotations', the layout of ntu60_3danno.pkl)"
        )
    if not isinstance(data.get("split", {}), dict):
        raise MMCLError(f"{path}: 'split' is {type(data['split']).__name__}, expected {{name: [frame_dir, ...]}}")
    return data


def read_pyskl(path, spec: DatasetSpec) -> PysklImport:
    """The samples of a pyskl 3D skeleton pickle as `spec`'s samples, its splits checked against
    the registry's protocols (the cache derives splits from the sample names, as pyskl did)."""
    path = Path(path)
    data = load_pickle(path)
    out = PysklImport()
    first: dict[str, int] = {}  # frame_dir -> its annotation
    for i, ann in enumerate(data["annotations"]):
        sample = _sample(path, i, ann, spec, out.failures)
        if sample is None:
            continue
        if sample.meta.name in first:  # a cache holds each sample once (scores, ensembles key by name)
            raise MMCLError(
                f"{path}: frame_dir {sample.meta.name!r} appears twice (annotations "
                f"{first[sample.meta.name]} and {i}); remove one"
            )
        first[sample.meta.name] = i
        out.samples.append(sample)
    out.ignored_splits = _check_splits(path, data.get("split", {}), spec, {s.meta.name: s.meta for s in out.samples})
    return out


def _sample(path: Path, i: int, ann, spec: DatasetSpec, failures: list) -> PysklSample | None:
    if not isinstance(ann, dict) or not isinstance(ann.get("frame_dir"), str):
        failures.append((f"#{i}", f"{path}: annotation {i} is not a dict with a 'frame_dir' string"))
        return None
    name = check_sample_name(ann["frame_dir"], f"{path}: annotation {i}'s frame_dir")
    meta = spec.parse_name(name)
    if meta is None:
        raise MMCLError(
            f"{path}: frame_dir {name!r} (annotation {i}) is not a {spec.name} sample name; "
            f"is this a {spec.name} file? (--dataset)"
        )
    keypoint = ann.get("keypoint")
    if not isinstance(keypoint, np.ndarray) or keypoint.ndim != 4:
        failures.append((name, f"{path}: {name}: 'keypoint' is not an (M, T, V, C) array"))
        return None
    m, t, v, c = keypoint.shape
    if c != 3:
        raise MMCLError(
            f"{path}: {name} has {c}D keypoints; only 3D skeleton pickles (*_3danno.pkl) make a skeleton cache"
        )
    expected_label = spec.label_of_action(meta.action)
    if _whole(ann, "label", -1, path, name) != expected_label:
        raise MMCLError(
            f"{path}: {name} has label {ann.get('label')!r}, but its action {meta.action} is class "
            f"{expected_label} of {spec.name}; is this a {spec.name} file? (--dataset)"
        )
    problem = None
    if v != spec.layout.num_joints:
        problem = f"{v} joints, expected {spec.layout.num_joints} ({spec.layout_name})"
    elif not 1 <= m <= spec.num_person:
        problem = f"{m} persons, expected 1 to {spec.num_person}"
    elif t == 0:
        problem = "no frames"
    elif _whole(ann, "total_frames", t, path, name) != t:
        problem = f"total_frames {ann['total_frames']} but keypoint has {t} frames"
    if problem:
        failures.append((name, f"{path}: {name}: {problem}"))
        return None
    joints = np.zeros((t, spec.num_person, v, 3), np.float32)
    joints[:, :m] = np.transpose(keypoint, (1, 0, 2, 3))
    return PysklSample(meta, joints)


def _whole(ann: dict, key: str, default: int, path: Path, name: str) -> int:
    """An annotation's integer field (a numpy integer allowed); anything else is one line naming it."""
    value = ann.get(key, default)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise MMCLError(f"{path}: {name}: '{key}' is {value!r}, not a whole number")
    return int(value)


def _check_splits(path: Path, split: dict, spec: DatasetSpec, metas: dict[str, SampleMeta]) -> list[str]:
    ignored = []
    protocols = {p.name: p for p in spec.protocols}
    for key, names in split.items():
        protocol, _, part = str(key).rpartition("_")
        if protocol not in protocols or part not in SPLIT_PARTS:
            ignored.append(str(key))
            continue
        rule = protocols[protocol]
        for name in names:
            meta = metas.get(name)
            if meta is not None and rule.is_train(meta) != SPLIT_PARTS[part]:
                raise MMCLError(
                    f"{path}: split {key!r} lists {name}, which {spec.name}'s {protocol} protocol puts in "
                    f"the {'training' if rule.is_train(meta) else 'test'} set; the cache's splits follow the "
                    f"official protocol, so this file's custom split cannot be kept"
                )
    return ignored


def pyskl_annotation(name: str, label: int, joints: np.ndarray) -> dict:
    """One pyskl annotation from a cache sample's joints (T, M, V, 3): absent trailing persons
    (all zero) are dropped, as in pyskl's own files; at least one stays."""
    keypoint = np.transpose(np.asarray(joints, np.float32), (1, 0, 2, 3))
    present = [bool(np.any(p)) for p in keypoint]
    m = max(1, max((i + 1 for i, p in enumerate(present) if p), default=1))
    keypoint = np.ascontiguousarray(keypoint[:m])
    return dict(frame_dir=name, label=int(label), keypoint=keypoint, total_frames=int(keypoint.shape[1]))


def write_pyskl(path, annotations: list[dict], split: dict[str, list[str]]) -> None:
    """Write {"split", "annotations"} under a temporary name, then rename it into place."""
    path = Path(path)
    make_folder(path.parent)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(dict(split=split, annotations=annotations), f, protocol=WRITE_PROTOCOL)
