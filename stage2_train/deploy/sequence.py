"""The skeleton sequence `mmcl predict` scores: a raw file (NTU .skeleton, NW-UCLA .json, UTD-MHAD
.mat, read by `shared.readers.read_sample`), an .npy/.npz array in a named joint order, or a cached
sample; with its layout, a description and, where the name tells, its true class."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.array_skeleton import ARRAY_SUFFIXES, read_array_skeleton
from shared.errors import MMCLError
from shared.layouts import LAYOUTS, get_layout
from shared.registry import DATASETS, get_dataset

from .export import ModelCard

# Raw skeleton files by name ending -> the dataset whose reader parses them (NTU: see below).
RAW_SUFFIXES = {".skeleton": "ntu120", "_skeleton.mat": "utd-mhad", ".json": "nw-ucla"}


@dataclass
class Sequence:
    joints: np.ndarray  # (T, M, V, 3) camera coordinates, as the readers return them
    layout: str
    description: str
    true_class: str | None = None


def raw_dataset(path: Path, dataset: str | None, card: ModelCard) -> str:
    """The dataset whose reader parses `path`: --dataset, else from the file name (an NTU file
    is read as the model's own dataset when that is in the NTU format)."""
    if dataset is not None:
        return dataset
    for suffix, name in RAW_SUFFIXES.items():
        if path.name.endswith(suffix):
            own = DATASETS.get(card.dataset)
            if suffix == ".skeleton" and own is not None and own.skeleton_format == "ntu":
                return card.dataset
            return name
    raise MMCLError(
        f"{path}: cannot tell the dataset from the file name (known endings: "
        f"{', '.join([*RAW_SUFFIXES, *ARRAY_SUFFIXES])}); pass --dataset"
    )


def check_joint_count(path: Path, joints: np.ndarray, layout: str, given: bool, card: ModelCard) -> None:
    """An array whose joint count is not its layout's: one line naming the file, both layouts and
    the --layout that reads it (a 20-joint file read as NTU-25 once ended in an IndexError)."""
    expected = get_layout(layout).num_joints
    found = joints.shape[2]
    if found == expected:
        return
    fits = [name for name, lay in LAYOUTS.items() if lay.num_joints == found]
    whose = "--layout" if given else f"the model's ({card.spec.input.layout})"
    hint = (
        f"pass --layout {fits[0]} ({found} joints)"
        if fits
        else f"no known layout has {found} joints (known: "
        f"{', '.join(f'{n} {lay.num_joints}' for n, lay in LAYOUTS.items())})"
    )
    raise MMCLError(f"{path}: {found} joints per frame, but {whose} layout {layout} has {expected}; {hint}")


def read_raw(path: str | Path, dataset: str | None, card: ModelCard, layout: str | None = None) -> Sequence:
    """A raw skeleton file; `.npy`/`.npz` arrays are in `layout` (default: the model's)."""
    from shared.readers import read_sample

    path = Path(path)
    if not path.is_file():
        raise MMCLError(f"{path}: no such skeleton file")
    if dataset is None and path.suffix in ARRAY_SUFFIXES:  # joints in --layout, else the model's own
        given = layout is not None
        layout = layout or card.spec.input.layout
        joints = read_array_skeleton(path).joints
        check_joint_count(path, joints, layout, given, card)
        return Sequence(joints, layout, f"{path} (array, {layout} joint order)")
    spec = get_dataset(raw_dataset(path, dataset, card))
    sample = read_sample(spec.name, path)
    stem = path.name[: -len("_skeleton.mat")] if path.name.endswith("_skeleton.mat") else path.stem
    meta = spec.parse_name(stem)
    true = spec.class_names[spec.label_of_action(meta.action)] if meta is not None else None
    return Sequence(np.asarray(sample.joints, np.float32), spec.layout_name, f"{path} ({spec.title})", true)


def read_cached(cache: str | Path, sample: str) -> Sequence:
    from shared.cache_schema import SkeletonCache, resolve_dataset_dir

    skeletons = SkeletonCache(resolve_dataset_dir(cache))
    if sample.isdigit():
        row = int(sample)
        if row >= len(skeletons):
            raise MMCLError(
                f"--sample {row}: {skeletons.path} holds {len(skeletons)} samples (0..{len(skeletons) - 1})"
            )
    else:
        try:
            row = skeletons.names.index(sample)
        except ValueError:
            raise MMCLError(f"--sample {sample!r}: no such sample name in {skeletons.path}") from None
    joints = skeletons.sample(row)["joints"]
    skeletons.close()
    names = skeletons.spec.class_names
    return Sequence(
        np.asarray(joints, np.float32),
        skeletons.layout,
        f"{skeletons.names[row]} ({skeletons.path}, row {row})",
        names[int(skeletons.labels[row])],
    )
