"""Sharded extraction: shard I of N, and joining the shards' (or a run's chunks') feature files."""

from __future__ import annotations

import re
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.cache_io import output_lock
from shared.cache_schema import (
    FEATURES_DIR,
    FeatureBlock,
    FeatureHeader,
    merge_feature_parts,
    read_feature_file,
    read_rows,
    same_feature_set,
)
from shared.cache_schema.common import open_cache
from shared.errors import CacheError, MMCLError

from .summary import Summary, skeleton_failures


@dataclass(frozen=True)
class Shard:
    """Shard I of N (0-based, as array job ids): every N-th batch of the skeleton file's rows from
    batch I. Whole batches, the ones an unsharded run makes: a model's numbers depend (slightly) on
    what else is in its batch (padding, kernel choice by batch size), so merged shards equal the
    unsharded run only when every sample is computed in the same company. Hence every shard must be
    run with the unsharded run's --batch-size (other batch sizes overlap, which --merge refuses)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if m is None or not 0 <= int(m[1]) < int(m[2]):
            raise MMCLError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. --shard 0/8 ... --shard 7/8")
        return cls(int(m[1]), int(m[2]))

    def rows(self, num_samples: int, batch_size: int) -> np.ndarray:
        batch = np.arange(num_samples) // batch_size
        return np.flatnonzero(batch % self.count == self.index)

    @property
    def suffix(self) -> str:
        return f".shard-{self.index}-of-{self.count}"


@dataclass(frozen=True)
class ShardPlan:
    """The rows a shard run was asked for (its shard of --batch-size batches, the first --limit of
    them), recorded in the shard's file: `--merge` checks from them that the shards cover every
    sample. Shards run with different batch sizes leave rows to no shard (0/2 at batch 2 and 1/2 at
    batch 10 of 12 samples: 4 never extracted), which is refused."""

    shard: Shard
    batch_size: int
    limit: int | None = None

    def rows(self, num_samples: int) -> np.ndarray:
        rows = self.shard.rows(num_samples, self.batch_size)
        return rows[: self.limit] if self.limit else rows

    def attrs(self) -> dict:
        """As PLAN_ATTRS of the shard's file (0: no --limit)."""
        return {
            "plan_shard": f"{self.shard.index}/{self.shard.count}",
            "plan_batch_size": self.batch_size,
            "plan_limit": self.limit or 0,
        }

    @classmethod
    def read(cls, path: Path) -> "ShardPlan | None":
        """The plan stored in a shard file; None for a file written before plans were stored."""
        with open_cache(path) as f:
            if "plan_shard" not in f.attrs:
                return None
            return cls(
                Shard.parse(str(f.attrs["plan_shard"])),
                int(f.attrs["plan_batch_size"]),
                int(f.attrs["plan_limit"]) or None,
            )


def join_parts(parts: list[Path]) -> tuple[FeatureHeader, FeatureBlock]:
    """A shard's committed chunks as one block (checked to be of one feature set)."""
    headers, blocks = zip(*(read_feature_file(p, require_complete=False) for p in parts))
    for part, header in zip(parts[1:], headers[1:]):
        if not same_feature_set(headers[0], header):
            raise CacheError(f"{part}: not part of the same feature set as {parts[0]}")
    return headers[0], FeatureBlock.concat(list(blocks))


def shard_files(folder: Path, name: str) -> list[tuple[Shard, Path]]:
    found = []
    for path in folder.glob(f"{name}.shard-*-of-*.h5"):
        m = re.fullmatch(re.escape(name) + r"\.shard-(\d+)-of-(\d+)\.h5", path.name)
        if m:
            found.append((Shard(int(m[1]), int(m[2])), path))
    return sorted(found, key=lambda s: (s[0].count, s[0].index))


def merge_shards(dataset_dir: Path, name: str) -> Summary:
    """`features/<name>.shard-I-of-N.h5` for I = 0..N-1 -> `features/<name>.h5`; the shards are removed.

    Idempotent: the output is installed (atomically) before any shard is deleted, so a merge killed
    while deleting, or run again once finished, finds the complete output and only removes the shard
    files left of the same feature set."""
    folder = dataset_dir / FEATURES_DIR
    output = folder / f"{name}.h5"
    shards = shard_files(folder, name)
    t0 = time.perf_counter()
    with ExitStack() as stack:  # no shard may still be running, and nobody else merges
        for lock in [output] + [p for _, p in shards]:
            stack.enter_context(output_lock(lock))
        merged = _merged(output)
        if merged is not None:
            _remove_merged_shards(merged[0], shards, output)
            block, n = merged[1], 0  # merged before: the report says so, not "merged from 0"
        else:
            n = _complete_shard_count(folder, name, shards)
            limited = _check_coverage(folder, name, shards)
            block = merge_feature_parts([p for _, p in shards], output, allow_missing=limited)
            for _, path in shards:
                path.unlink()
    return Summary(
        output,
        len(block),
        len(block),
        seconds=time.perf_counter() - t0,
        block=block,
        merged_shards=n,
        skeleton_failures=skeleton_failures(dataset_dir),
    )


def _merged(output: Path) -> tuple[FeatureHeader, FeatureBlock] | None:
    """The complete feature file at `output` (header, rows), or None when there is none yet."""
    if not output.exists():
        return None
    return read_feature_file(output)  # a partial or foreign file there is an error naming it


def _remove_merged_shards(header: FeatureHeader, shards: list[tuple[Shard, Path]], output: Path) -> None:
    for _, path in shards:
        shard_header, _ = read_feature_file(path, require_complete=False)
        if not same_feature_set(header, shard_header):
            raise CacheError(
                f"{path}: not of the feature set already merged into {output}; move it away "
                f"or delete {output} to merge again"
            )
    for _, path in shards:
        path.unlink()


def _check_coverage(folder: Path, name: str, shards: list[tuple[Shard, Path]]) -> bool:
    """Every sample is in exactly one shard's plan and each shard holds its planned rows (extracted or
    recorded failed); else a clear error. Returns whether a shard ran with --limit (then the rows past
    the limit stay invalid, as in an unsharded --limit run). Shards written before plans were stored
    must cover every sample between them."""
    plans = [ShardPlan.read(path) for _, path in shards]
    if any(plan is None for plan in plans):
        return False
    sizes = sorted({plan.batch_size for plan in plans})
    if len(sizes) > 1:
        runs = ", ".join(f"{p.shard.index}/{p.shard.count} at {p.batch_size}" for p in plans)
        raise MMCLError(
            f"{folder}: shards of {name} were run with different --batch-size ({runs}): some samples "
            f"fall in no shard; rerun them all with one --batch-size"
        )
    for (shard, path), plan in zip(shards, plans):
        if plan.shard != shard:
            raise CacheError(f"{path}: holds shard {plan.shard.index}/{plan.shard.count}, not the one its name says")
        _, index, names = read_rows(path)
        held = {int(i) for i, n in zip(index, names) if n}
        planned = set(plan.rows(_num_samples(path)).tolist())
        if held != planned:
            gap = sorted(planned - held)[:5]
            raise MMCLError(
                f"{path}: holds {len(held & planned)} of the {len(planned)} samples its run was given "
                f"(e.g. rows {', '.join(map(str, gap or sorted(held - planned)[:5]))}); rerun "
                f"`mmcl extract --shard {shard.index}/{shard.count} --batch-size {plan.batch_size}`"
            )
    return any(plan.limit for plan in plans)


def _num_samples(path: Path) -> int:
    with open_cache(path) as f:
        return int(f.attrs["num_samples"])


def _complete_shard_count(folder: Path, name: str, shards: list[tuple[Shard, Path]]) -> int:
    """N, once shard files 0..N-1 of one split are all present; else a clear error."""
    if not shards:
        present = sorted({p.name.split(".shard-")[0] for p in folder.glob("*.shard-*.h5")})
        hint = f"; shards present for: {', '.join(present)} (choose with --feature-set)" if present else ""
        raise MMCLError(f"no shard files {folder}/{name}.shard-I-of-N.h5 to merge{hint}")
    counts = {s.count for s, _ in shards}
    if len(counts) > 1:
        raise MMCLError(
            f"{folder}: shards of {name} from runs split in different ways (N = "
            f"{', '.join(map(str, sorted(counts)))}); keep one set"
        )
    n = counts.pop()
    missing = sorted(set(range(n)) - {s.index for s, _ in shards})
    if missing:
        raise MMCLError(
            f"{folder}: shard(s) {', '.join(f'{i}/{n}' for i in missing)} of {name} missing; "
            f"run them (mmcl extract --shard I/{n}) before --merge"
        )
    return n
