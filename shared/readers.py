"""One entry point to every dataset's raw skeletons: list a root's samples, read one sample.

Every reader returns metres in camera coordinates as (T, M, V, 3) with M and V from the dataset's
layout; normalisation (translation to the spine middle) happens in stage 2, the same for all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .errors import MMCLError, SkeletonFormatError
from .layouts import pad_persons
from .progress import progress_bar
from .dataset_spec import DatasetSpec, SampleMeta
from .registry import find_dir, get_dataset
from .skeleton_sample import SkeletonSample, check_coordinates
from .worker_lifetime import die_with_parent


@dataclass
class SampleListing:
    samples: list[tuple[SampleMeta, Path]]  # sorted by name
    missing: list[str]  # in the dataset's official list of samples without skeletons
    skipped: list[Path]  # files whose names are not this dataset's (e.g. NTU120 files in ntu60)


# Per skeleton format: (glob pattern, how a path becomes a sample name).
FILE_PATTERNS = {
    "ntu": ("*.skeleton", lambda p: p.stem),
    "ucla_json": ("*.json", lambda p: p.stem),
    "utd_mat": ("*_skeleton.mat", lambda p: p.name[: -len("_skeleton.mat")]),
}


def list_samples(spec: DatasetSpec, root) -> SampleListing:
    """The dataset's samples under `root` (a custom dataset's: its manifest's), or a clear error
    naming what was expected where."""
    if spec.manifest is not None:
        from .custom_dataset import load_manifest

        return SampleListing([(s.meta, s.skeleton) for s in load_manifest(spec.manifest).samples], [], [])
    folder = find_dir(Path(root), spec.skeleton_dirs, "skeleton", spec)
    if spec.skeleton_format == "sysu_mat":
        from .sysu_skeleton import list_sysu

        files = list_sysu(folder)
    else:
        pattern, to_name = FILE_PATTERNS[spec.skeleton_format]
        files = [(to_name(p), p) for p in folder.glob(pattern)]
    missing_names = spec.missing_samples()
    samples, missing, skipped = [], [], []
    for name, path in sorted(files):
        meta = spec.parse_name(name)
        if meta is None:
            skipped.append(path)
        elif name in missing_names:
            missing.append(name)
        else:
            samples.append((meta, path))
    if not samples:
        raise MMCLError(
            f"no {spec.title} skeleton files under {folder} (expected files like "
            f"{FILE_PATTERNS.get(spec.skeleton_format, ('<subject>/video<k>/sklWorld.mat',))[0]}"
            f" named as {spec.name} samples)"
        )
    return SampleListing(samples, missing, skipped)


def read_sample(dataset: str | DatasetSpec, path) -> SkeletonSample:
    """Read and clean one raw sample of `dataset` (a registry name, or a spec); raises
    SkeletonFormatError naming the file and problem (CoordinateError when a kept coordinate is NaN,
    infinite or absurd: see check_coordinates)."""
    sample = _read_cleaned(dataset, path)
    check_coordinates(sample.joints, path, sample.frame_index)
    return sample


def _read_cleaned(dataset: str | DatasetSpec, path) -> SkeletonSample:
    spec = dataset if isinstance(dataset, DatasetSpec) else get_dataset(dataset)
    if Path(path).exists() and not Path(path).is_file() and not Path(path).is_dir():  # a FIFO would block the reader
        raise SkeletonFormatError(path, "not a regular file (a FIFO, socket or device)")
    fmt = spec.skeleton_format
    if fmt == "by_suffix":  # a custom dataset's files: any supported format, fitted to its layout
        return _fit_to(spec, Path(path), _read_file(Path(path)))
    return _read_format(fmt, path)


def _read_file(path: Path) -> SkeletonSample:
    from .custom_dataset import skeleton_format

    fmt = skeleton_format(path)
    if not path.is_file():
        raise SkeletonFormatError(path, "no such file")
    if fmt == "array":
        from .array_skeleton import read_array_skeleton

        return read_array_skeleton(path)
    return _read_format(fmt, path)


def _read_format(fmt: str, path) -> SkeletonSample:
    if fmt == "ntu":
        from .ntu_cleaning import read_and_clean

        clean = read_and_clean(path)
        return SkeletonSample(clean.joints, clean.frame_index, clean.color_xy)
    if fmt == "ucla_json":
        from .ucla_skeleton import read_ucla_json

        joints = read_ucla_json(path)
        return SkeletonSample(joints, np.arange(len(joints), dtype=np.int32))
    if fmt == "utd_mat":
        from .utd_skeleton import read_utd_mat

        return read_utd_mat(path)  # drops untracked frames; projects colour pixels
    if fmt == "sysu_mat":
        from .sysu_skeleton import read_sysu

        return read_sysu(path)
    raise MMCLError(f"{path}: no reader for skeleton format {fmt!r}")


def _fit_to(spec: DatasetSpec, path: Path, sample: SkeletonSample) -> SkeletonSample:
    """`sample` with the dataset's persons: absent ones added as zeros, and a file's extra persons
    dropped when they are absent (NTU files always hold two); its joints must be the layout's."""
    _, m, v, _ = sample.joints.shape
    if v != spec.layout.num_joints:
        raise SkeletonFormatError(
            path, f"{v} joints per person; {spec.name}'s layout {spec.layout_name} has {spec.layout.num_joints}"
        )
    n = spec.num_person
    if m > n and np.any(sample.joints[:, n:]):
        raise SkeletonFormatError(path, f"{m} persons; {spec.name} has persons: {n} (raise it in the manifest)")

    def fit(a):
        return None if a is None else pad_persons(a[:, :n], n)

    return SkeletonSample(fit(sample.joints), sample.frame_index, fit(sample.color_xy))


def read_sample_safe(dataset: str | DatasetSpec, path) -> tuple[SkeletonSample | None, str | None]:
    """(sample, None), or (None, the error naming the file): one broken file is recorded, not fatal."""
    try:
        return read_sample(dataset, path), None
    except MMCLError as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - one broken file must not stop 100k others
        return None, f"{path}: unexpected {type(e).__name__}: {e}"


def read_many(
    dataset: str | DatasetSpec,
    paths: Iterable,
    workers: int | None = None,
    progress: bool = True,
    chunksize: int | None = None,
) -> Iterator[tuple[str, SkeletonSample | None, str | None]]:
    """Yield (path, sample or None, error or None) per file, in input order.

    Files are parsed in a process pool (`workers` processes, default: all CPUs; 0 or 1 reads in
    this process): NTU120 is 114k files. The workers die with this process.
    """
    paths = [str(p) for p in paths]
    workers = (os.cpu_count() or 1) if workers is None else workers
    if chunksize is None:  # a few chunks per worker: balanced, yet cheap to hand out
        chunksize = max(1, min(64, len(paths) // (max(workers, 1) * 8)))
    read = partial(read_sample_safe, dataset)
    with ExitStack() as stack:
        label = dataset.name if isinstance(dataset, DatasetSpec) else dataset
        bar = stack.enter_context(
            progress_bar(total=len(paths), desc=f"{label} skeletons", unit="file", disable=not progress)
        )
        if workers <= 1 or len(paths) <= 1:
            results = map(read, paths)
        else:
            pool = stack.enter_context(
                ProcessPoolExecutor(min(workers, len(paths)), initializer=die_with_parent, initargs=(os.getpid(),))
            )
            results = pool.map(read, paths, chunksize=chunksize)
        for path, (sample, error) in zip(paths, results, strict=True):
            bar.update()
            yield path, sample, error
