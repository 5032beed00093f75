"""Never lose work: a run's rows go through in chunks, each committed as a part file; a restarted
run reads what earlier runs left (checking they used the same settings) and plans what remains."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.cache_schema import (
    FEATURES_DIR,
    FeatureBlock,
    FeatureHeader,
    merge_feature_parts,
    read_feature_file,
    read_rows,
    write_feature_file,
)
from shared.errors import CacheError, MMCLError

from .input_stamps import InputStamps
from .provenance import attr_differences
from .shards import Shard, ShardPlan, join_parts


EARLIER_PART = "part-earlier.h5"  # a finished output's rows kept while some of its rows are extracted again


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
        return cls(folder / f"{stem}.h5", folder / f"{stem}.parts", folder / f"{name}.images", folder / f"{name}.h5")


@dataclass
class Progress:
    """What earlier runs of the same output left: rows in committed parts, or a finished output."""

    done: set[int]
    finished: Path | None = None  # a file that already holds every wanted row


def read_progress(
    paths: FeaturePaths,
    wanted: np.ndarray,
    names_hash: str,
    request: dict,
    stamps: InputStamps,
    retry_failed: bool = False,
) -> Progress:
    """Rows already done. Parts made for another skeleton file are dropped; parts or an output made
    with other settings are an error (choose another --feature-set or delete them). Rows whose input
    changed since (input_stamps.py), and recorded failures with `retry_failed`, are not done: they
    are taken out of the parts (a finished output's other rows become a part) and extracted again."""
    for path in dict.fromkeys([paths.output, paths.complete]):  # a shard run: its file, or the merged one
        if path.exists():
            attrs, index, names = read_rows(path)
            attrs = {"frame_features": True, **attrs}  # files made before the flag stored every frame
            _check_request(path, attrs, with_frames_held(request, attrs))
            processed = {int(i) for i, name in zip(index, names) if name}  # "" = not extracted (--limit)
            if attrs.get("names_hash") != names_hash or not processed.issuperset(wanted.tolist()):
                continue
            header, block = read_feature_file(path, require_complete=False)
            redo = rows_to_redo(path, block, stamps, retry_failed)
            if not redo:
                return Progress(processed, finished=path)
            if path != paths.output:
                raise MMCLError(
                    f"{path}: {len(redo)} samples of this shard must be extracted again (inputs changed "
                    f"or --retry-failed) after its shards were merged; rerun without --shard"
                )
            keep = np.flatnonzero([int(i) in processed and int(i) not in redo for i in block.index])
            write_feature_file(paths.parts / EARLIER_PART, header, block.take(keep), complete=False)
            break
    # files being written when a run was killed (we hold the lock: nobody else writes them)
    for stale in [*paths.parts.glob(".part-*.tmp-*"), *paths.output.parent.glob(f".{paths.output.name}.tmp-*")]:
        stale.unlink()
    done: set[int] = set()
    for part in sorted(paths.parts.glob("part-*.h5")):
        attrs, index, _ = read_rows(part)
        if attrs.get("names_hash") != names_hash:
            print(f"discarding {part}: made for another skeleton cache")
            part.unlink()
            continue
        _check_request(part, attrs, request)
        header, block = read_feature_file(part, require_complete=False)
        redo = rows_to_redo(part, block, stamps, retry_failed)
        if redo:  # the part without them (written aside, then renamed), or nothing
            keep = np.flatnonzero([int(i) not in redo for i in block.index])
            if len(keep):
                write_feature_file(part, header, block.take(keep), complete=False)
            else:
                part.unlink()
        done.update(int(i) for i in index if int(i) not in redo)
    return Progress(done)


def rows_to_redo(path: Path, block: FeatureBlock, stamps: InputStamps, retry_failed: bool) -> set[int]:
    """Rows of `block` to extract again: their input changed, or (with `retry_failed`) they failed."""
    changed = stamps.stale(block.index, block.input_stamp)
    failed = set()
    if retry_failed:
        names = {name for name, _, _ in block.failures}
        failed = {int(i) for i, name in zip(block.index, block.name) if name in names}
    if changed or failed:
        print(
            f"{path}: extracting again {len(changed)} samples whose input changed"
            + (f" and {len(failed)} that failed" if retry_failed else "")
        )
    return changed | failed


def with_frames_held(request: dict, attrs: dict) -> dict:
    """A finished output that holds per-frame embeddings also serves a run that does not ask for
    them (it holds more); parts never mix the two (their arrays differ in shape)."""
    if attrs.get("frame_features") and not request.get("frame_features", False):
        return {**request, "frame_features": attrs["frame_features"]}
    return request


def _check_request(path: Path, attrs: dict, request: dict) -> None:
    diff = attr_differences(request, attrs, keys=list(request))
    if diff:
        raise CacheError(
            f"{path} was made with other settings ({'; '.join(diff)}); use another "
            f"--feature-set NAME, or delete it to start again"
        )


def check_parts_header(paths: FeaturePaths, header: FeatureHeader) -> None:
    """After the models load: earlier parts must come from the same models and libraries."""
    for part in sorted(paths.parts.glob("part-*.h5"))[:1]:
        found, _ = read_feature_file(part, require_complete=False)
        diff = attr_differences(header.attrs, found.attrs)
        if diff or found.questions != header.questions:
            raise CacheError(
                f"{paths.parts} holds chunks made with other models or libraries "
                f"({'; '.join(diff) or 'questions differ'}); delete the folder to start again"
            )


def plan_chunks(wanted: np.ndarray, done: set[int], chunk_size: int, batch_size: int) -> list[np.ndarray]:
    """Pending rows in chunks fixed by position in `wanted`, so a resumed run batches the samples
    exactly as an uninterrupted one (same inputs per model call, same numbers)."""
    size = -(-chunk_size // batch_size) * batch_size
    chunks = [wanted[i : i + size] for i in range(0, len(wanted), size)]
    pending = [np.array([r for r in c if int(r) not in done], np.int64) for c in chunks]
    return [c for c in pending if len(c)]


def batches_of(chunks: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Dataset positions per batch; no batch spans two chunks."""
    out, start = [], 0
    for chunk in chunks:
        out += [
            list(range(start + i, start + min(i + batch_size, len(chunk)))) for i in range(0, len(chunk), batch_size)
        ]
        start += len(chunk)
    return out


def commit_chunk(
    paths: FeaturePaths, header: FeatureHeader, blocks: list[FeatureBlock], stamps: InputStamps
) -> FeatureBlock:
    """The chunk's batches as one part file, each row with the stamp of its input."""
    block = FeatureBlock.concat(blocks)
    block.input_stamp = stamps.of(block.index)
    write_feature_file(paths.parts / f"part-{int(block.index[0]):07d}.h5", header, block, complete=False)
    return block


def finish(paths: FeaturePaths, plan: ShardPlan | None) -> FeatureBlock:
    """Merge the committed parts into the output (crash-safe: written aside, then renamed), then
    drop the parts. A shard's file (`plan` given) keeps its own rows and the plan they came from."""
    parts = sorted(paths.parts.glob("part-*.h5"))
    if plan is None:  # rows outside --limit stay invalid
        block = merge_feature_parts(parts, paths.output, allow_missing=True)
    else:  # a shard: its own rows only, merged with the other shards later
        header, block = join_parts(parts)
        write_feature_file(paths.output, header, block, complete=False, plan=plan.attrs())
    shutil.rmtree(paths.parts)
    return block
