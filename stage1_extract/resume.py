"""Never lose work: a run's rows go through in chunks, each committed as a part file; a restarted
run reads what earlier runs left (checking they used the same settings) and plans what remains."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from shared.cache_schema import (
    FEATURES_DIR, FeatureBlock, FeatureHeader, merge_feature_parts, read_feature_file, write_feature_file)
from shared.errors import CacheError

from .provenance import attr_differences
from .shards import Shard, join_parts


@dataclass(frozen=True)
class FeaturePaths:
    output: Path  # features/<name>.h5, or the shard's file
    parts: Path  # folder of this run's committed chunks
    images: Path  # --save-images: stitched JPEGs
    complete: Path  # features/<name>.h5 (a shard's rows are done once the shards are merged)

    @classmethod
    def of(cls, dataset_dir: Path, name: str, shard: Shard | None) -> "FeaturePaths":
        stem = name + (shard.suffix if shard else "")
        folder = dataset_dir / FEATURES_DIR
        return cls(folder / f"{stem}.h5", folder / f"{stem}.parts", folder / f"{name}.images",
                   folder / f"{name}.h5")


@dataclass
class Progress:
    """What earlier runs of the same output left: rows in committed parts, or a finished output."""

    done: set[int]
    finished: Path | None = None  # a file that already holds every wanted row


def read_progress(paths: FeaturePaths, wanted: np.ndarray, names_hash: str, request: dict) -> Progress:
    """Rows already done. Parts made for another skeleton file are dropped; parts or an output made
    with other settings are an error (choose another --feature-set or delete them)."""
    for path in dict.fromkeys([paths.output, paths.complete]):  # a shard run: its file, or the merged one
        if path.exists():
            attrs, index, names = _rows_of(path)
            _check_request(path, attrs, with_frames_held(request, attrs))
            processed = {int(i) for i, name in zip(index, names) if name}  # "" = not extracted (--limit)
            if attrs.get("names_hash") == names_hash and processed.issuperset(wanted.tolist()):
                return Progress(processed, finished=path)
    # files being written when a run was killed (we hold the lock: nobody else writes them)
    for stale in [*paths.parts.glob(".part-*.tmp-*"), *paths.output.parent.glob(f".{paths.output.name}.tmp-*")]:
        stale.unlink()
    done: set[int] = set()
    for part in sorted(paths.parts.glob("part-*.h5")):
        attrs, index, _ = _rows_of(part)
        if attrs.get("names_hash") != names_hash:
            print(f"discarding {part}: made for another skeleton cache")
            part.unlink()
            continue
        _check_request(part, attrs, request)
        done.update(int(i) for i in index)
    return Progress(done)


def _rows_of(path: Path) -> tuple[dict, np.ndarray, list[str]]:
    """Attributes, row indices and sample names of a feature file, without reading its arrays."""
    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["samples/name"][()]]
            attrs = {"frame_features": True, **f.attrs}  # files made before the flag stored every frame
            return attrs, f["samples/index"][()], names
    except (OSError, KeyError) as e:
        raise CacheError(f"{path}: unreadable feature file ({e}); delete it to start again") from None


def with_frames_held(request: dict, attrs: dict) -> dict:
    """A finished output that holds per-frame embeddings also serves a run that does not ask for
    them (it holds more); parts never mix the two (their arrays differ in shape)."""
    if attrs.get("frame_features") and not request.get("frame_features", False):
        return {**request, "frame_features": attrs["frame_features"]}
    return request


def _check_request(path: Path, attrs: dict, request: dict) -> None:
    diff = attr_differences(request, attrs, keys=list(request))
    if diff:
        raise CacheError(f"{path} was made with other settings ({'; '.join(diff)}); use another "
                         f"--feature-set NAME, or delete it to start again")


def check_parts_header(paths: FeaturePaths, header: FeatureHeader) -> None:
    """After the models load: earlier parts must come from the same models and libraries."""
    for part in sorted(paths.parts.glob("part-*.h5"))[:1]:
        found, _ = read_feature_file(part, require_complete=False)
        diff = attr_differences(header.attrs, found.attrs)
        if diff or found.questions != header.questions:
            raise CacheError(f"{paths.parts} holds chunks made with other models or libraries "
                             f"({'; '.join(diff) or 'questions differ'}); delete the folder to start again")


def plan_chunks(wanted: np.ndarray, done: set[int], chunk_size: int, batch_size: int) -> list[np.ndarray]:
    """Pending rows in chunks fixed by position in `wanted`, so a resumed run batches the samples
    exactly as an uninterrupted one (same inputs per model call, same numbers)."""
    size = -(-chunk_size // batch_size) * batch_size
    chunks = [wanted[i:i + size] for i in range(0, len(wanted), size)]
    pending = [np.array([r for r in c if int(r) not in done], np.int64) for c in chunks]
    return [c for c in pending if len(c)]


def batches_of(chunks: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Dataset positions per batch; no batch spans two chunks."""
    out, start = [], 0
    for chunk in chunks:
        out += [list(range(start + i, start + min(i + batch_size, len(chunk))))
                for i in range(0, len(chunk), batch_size)]
        start += len(chunk)
    return out


def commit_chunk(paths: FeaturePaths, header: FeatureHeader, blocks: list[FeatureBlock]) -> FeatureBlock:
    block = FeatureBlock.concat(blocks)
    write_feature_file(paths.parts / f"part-{int(block.index[0]):07d}.h5", header, block, complete=False)
    return block


def finish(paths: FeaturePaths, complete: bool) -> FeatureBlock:
    """Merge the committed parts into the output (crash-safe: written aside, then renamed), then
    drop the parts."""
    parts = sorted(paths.parts.glob("part-*.h5"))
    if complete:  # rows outside --limit stay invalid
        block = merge_feature_parts(parts, paths.output, allow_missing=True)
    else:  # a shard: its own rows only, merged with the other shards later
        header, block = join_parts(parts)
        write_feature_file(paths.output, header, block, complete=False)
    shutil.rmtree(paths.parts)
    return block
