"""Stage 1, step 1: read and clean a dataset's raw skeletons into `<out>/<dataset>/skeletons.h5`.

Files are parsed in worker processes (NTU120 is 114k files); a broken file is recorded in the
failures table and skipped. The cache is written once: a rerun with the same inputs reuses it, so a
sharded feature run can start many processes on one skeleton file. Same inputs: the same parameters
and every raw file with the stamp (resolved path, size, mtime) it had (input_stamps.py); a changed,
added or removed file builds it again.
"""

from __future__ import annotations

import json
from pathlib import Path


from shared.progress import progress_bar
from shared.cache_io import output_lock
from shared.cache_schema import SKELETON_FILE, SkeletonCache, SkeletonCacheWriter
from shared.ctrgcn_npz import iter_ctrgcn_npz
from shared.errors import CacheError, CoordinateError, MMCLError
from shared.readers import list_samples, read_many
from shared.dataset_spec import DatasetSpec
from shared.skeleton_sample import check_coordinates

from .input_stamps import sources_changed, sources_digest, stamps


def existing_cache(path: Path, params: dict) -> SkeletonCache | None:
    """The cache at `path` when it is valid and was built with the same parameters."""
    if not path.exists():
        return None
    try:
        cache = SkeletonCache(path)
    except CacheError as e:
        print(f"rebuilding {path}: {e}")
        return None
    if json.loads(cache.attrs.get("params", "{}")) != params:
        print(f"rebuilding {path}: it was built with other parameters")
        return None
    return cache


def build_skeleton_cache(
    spec: DatasetSpec,
    root,
    out_dir,
    workers: int | None = None,
    limit: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write `out_dir/<dataset>/skeletons.h5` from the raw files under `root`; return its path."""
    root = Path(root)
    path = Path(out_dir) / spec.name / SKELETON_FILE
    params = {"dataset": spec.name, "root": str(root.resolve()), "limit": limit}
    if spec.manifest is not None:  # an edited manifest is other inputs
        from shared.custom_dataset import load_manifest

        params["manifest"] = load_manifest(spec.manifest).digest
    cache = None if overwrite else existing_cache(path, params)
    try:
        listing = list_samples(spec, root)
    except MMCLError as e:
        if cache is None:
            raise
        print(f"skeleton cache {path} is used as built: its raw files cannot be listed ({e})")
        return path
    samples = listing.samples[:limit] if limit else listing.samples
    sources = stamps(p for _, p in samples)
    if cache is not None:
        changed = sources_changed(cache, samples, sources)
        if changed is None:
            print(f"skeleton cache {path} is up to date")
            return path
        print(f"rebuilding {path}: {changed}")
    with output_lock(path), SkeletonCacheWriter(path, spec, root.resolve(), params) as writer:
        results = read_many(spec if spec.manifest else spec.name, [p for _, p in samples], workers, progress)
        for (meta, _), source, (_, sample, error) in zip(samples, sources, results):
            if error is not None:
                writer.add_failure(meta.name, "skeleton", error)
            else:
                writer.append(meta, sample.joints, sample.frame_index, sample.color_xy, source)
        writer.attrs.update(excluded_missing=len(listing.missing), sources_digest=sources_digest(samples, sources))
        failed = len(writer.failures)
    excluded = (
        f", {len(listing.missing)} excluded by the official missing-skeleton list" if spec.missing_list else ""
    )  # NTU's; other datasets publish none
    print(f"{path}: {len(samples) - failed} samples, {failed} failed (listed in failures/){excluded}")
    return path


def import_ctrgcn_npz(spec: DatasetSpec, npz_path, names_path, protocol: str, out_dir, progress: bool = True) -> Path:
    """Build the skeleton cache from CTR-GCN's preprocessed npz (frames are already translated;
    colour coordinates are unknown, so stage 1 then crops nothing)."""
    import numpy as np

    path = Path(out_dir) / spec.name / SKELETON_FILE
    params = {"dataset": spec.name, "npz": str(Path(npz_path).resolve()), "protocol": protocol}
    rows = iter_ctrgcn_npz(npz_path, names_path, spec, spec.protocol(protocol))
    with output_lock(path), SkeletonCacheWriter(path, spec, Path(npz_path).resolve(), params) as writer:
        for meta, joints in progress_bar(
            rows, desc=f"import {Path(npz_path).name}", unit="sample", disable=not progress
        ):
            if len(joints) == 0:
                writer.add_failure(meta.name, "skeleton", f"{npz_path}: all-zero sequence")
                continue
            try:
                check_coordinates(joints, f"{npz_path}, sample {meta.name}")
            except CoordinateError as e:
                writer.add_failure(meta.name, "skeleton", str(e))
                continue
            writer.append(meta, joints, np.arange(len(joints), dtype=np.int32))
        imported = len(writer.metas)
    print(f"{path}: imported {imported} samples from {npz_path}")
    return path
