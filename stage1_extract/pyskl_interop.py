"""pyskl interop: a skeleton cache from a pyskl 3D annotation pickle (`mmcl extract --import-pyskl`),
and a cache written as one (`mmcl export-pyskl`), so skeletons move between the toolkits without
re-reading the raw files. The format itself is shared.pyskl_pickle.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from shared.cache_io import output_lock
from shared.cache_schema import SKELETON_FILE, SkeletonCache, SkeletonCacheWriter
from shared.errors import CacheError, CoordinateError
from shared.pyskl_pickle import pyskl_annotation, read_pyskl, write_pyskl
from shared.dataset_spec import DatasetSpec
from shared.skeleton_sample import check_coordinates


def import_pyskl(spec: DatasetSpec, pkl_path, out_dir, progress: bool = True) -> Path:
    """Build `out_dir/<dataset>/skeletons.h5` from a pyskl pickle; unusable samples go to failures/."""
    import numpy as np

    pkl_path = Path(pkl_path)
    path = Path(out_dir) / spec.name / SKELETON_FILE
    read = read_pyskl(pkl_path, spec)
    params = {"dataset": spec.name, "pyskl": str(pkl_path.resolve())}
    with output_lock(path), SkeletonCacheWriter(path, spec, pkl_path.resolve(), params) as writer:
        for name, reason in read.failures:
            writer.add_failure(name, "skeleton", reason)
        for sample in tqdm(read.samples, desc=f"import {pkl_path.name}", unit="sample", disable=not progress):
            try:
                check_coordinates(sample.joints, f"{pkl_path}, sample {sample.meta.name}")
            except CoordinateError as e:
                writer.add_failure(sample.meta.name, "skeleton", str(e))
                continue
            writer.append(sample.meta, sample.joints, np.arange(len(sample.joints), dtype=np.int32))
        imported, failed = len(writer.metas), len(writer.failures)
    ignored = (
        f"; splits not among {spec.name}'s protocols, ignored: {', '.join(read.ignored_splits)}"
        if read.ignored_splits
        else ""
    )
    print(f"{path}: imported {imported} samples from {pkl_path}, {failed} failed (listed in failures/){ignored}")
    return path


def export_pyskl(dataset_dir, out, progress: bool = True) -> int:
    """Write the cache's skeletons as a pyskl pickle at `out`; returns the number of samples.
    Splits: `<protocol>_train` and `<protocol>_val` for each of the cache's protocols."""
    cache = SkeletonCache(dataset_dir)
    if len(cache) == 0:
        raise CacheError(f"{cache.path}: no samples to export")
    annotations = [
        pyskl_annotation(name, cache.labels[i], cache.sample(i)["joints"])
        for i, name in enumerate(tqdm(cache.names, desc="export", unit="sample", disable=not progress))
    ]
    split = {}
    for protocol, is_train in cache.splits.items():
        split[f"{protocol}_train"] = [n for n, t in zip(cache.names, is_train) if t]
        split[f"{protocol}_val"] = [n for n, t in zip(cache.names, is_train) if not t]
    write_pyskl(out, annotations, split)
    return len(annotations)
