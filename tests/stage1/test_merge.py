"""`mmcl extract --merge` is idempotent: a merge killed between its shard deletions, or run again once
finished, completes (on synthetic shard files: merging needs no models)."""

import numpy as np
import pytest

from shared.cache_schema import (
    FEATURES_DIR,
    FeatureBlock,
    FeatureHeader,
    SkeletonCache,
    SkeletonCacheWriter,
    read_feature_file,
    write_feature_file,
)
from shared.errors import CacheError, MMCLError
from shared.registry import DEMO
from stage1_extract.shards import Shard, ShardPlan, merge_shards

NAMES = ["S001C001P001R001A001", "S001C002P003R001A008", "S002C003P004R002A058"]
SET = "tiny-k2"


def skeleton_cache(dataset_dir, names=NAMES) -> SkeletonCache:
    rng = np.random.default_rng(0)
    with SkeletonCacheWriter(dataset_dir / "skeletons.h5", DEMO) as w:
        for name in names:
            joints = rng.normal(size=(4, DEMO.num_person, DEMO.layout.num_joints, 3)).astype(np.float32)
            w.append(DEMO.parse_name(name), joints, np.arange(4, dtype=np.int32))
    return SkeletonCache(dataset_dir)


def header(cache: SkeletonCache, mllm: str = "tiny") -> FeatureHeader:
    return FeatureHeader(
        cache.names_hash, len(cache), ["q0?", "q1?"], ["a", "b"], np.ones((2, 5)), {"mllm": mllm, "frames": 2}
    )


def write_shard(
    cache: SkeletonCache, shard: Shard, mllm: str = "tiny", batch_size: int = 1, limit: int | None = None, rows=None
):
    """Shard `shard`'s file as `mmcl extract --shard` writes it (its rows, or the `rows` given, and its plan)."""
    plan = ShardPlan(shard, batch_size, limit)
    rows = plan.rows(len(cache)) if rows is None else np.asarray(rows)
    rng = np.random.default_rng(shard.index)
    block = FeatureBlock(
        index=rows,
        name=[cache.names[i] for i in rows],
        rgb_valid=np.ones(len(rows), bool),
        rgb_pooled=rng.normal(size=(len(rows), 4)),
        rgb_frames=rng.normal(size=(len(rows), 2, 4)),
        text_valid=np.ones(len(rows), bool),
        yes_prob=rng.uniform(size=(len(rows), 2)).astype(np.float32),
        description=["a person"] * len(rows),
        text_embedding=rng.normal(size=(len(rows), 5)),
    )
    path = cache.path.parent / FEATURES_DIR / f"{SET}{shard.suffix}.h5"
    write_feature_file(path, header(cache, mllm), block, complete=False, plan=plan.attrs())
    return path


def test_merge_killed_between_shard_deletions_or_rerun_finishes(tmp_path):
    dataset_dir = tmp_path / "demo"
    cache = skeleton_cache(dataset_dir)
    shards = [Shard(0, 2), Shard(1, 2)]
    for shard in shards:
        write_shard(cache, shard)
    first = merge_shards(dataset_dir, SET)
    assert first.merged_shards == 2 and first.exit_code == 0
    merged = read_feature_file(first.output)[1]

    # A kill after the first deletion leaves the output and the second shard: the rerun removes it.
    left = write_shard(cache, shards[1])
    again = merge_shards(dataset_dir, SET)
    assert not left.exists() and again.output == first.output and again.exit_code == 0
    np.testing.assert_array_equal(read_feature_file(again.output)[1].rgb_pooled, merged.rgb_pooled)

    finished = merge_shards(dataset_dir, SET)  # nothing left to merge: the finished merge is reported
    assert finished.output == first.output and len(finished.block) == len(NAMES) and finished.exit_code == 0
    assert "3 samples" in finished.report()


def test_merge_refuses_a_leftover_shard_of_another_feature_set(tmp_path):
    dataset_dir = tmp_path / "demo"
    cache = skeleton_cache(dataset_dir)
    for shard in (Shard(0, 2), Shard(1, 2)):
        write_shard(cache, shard)
    merge_shards(dataset_dir, SET)
    stray = write_shard(cache, Shard(1, 2), mllm="another")
    with pytest.raises(CacheError, match=f"{stray.name}: not of the feature set already merged"):
        merge_shards(dataset_dir, SET)
    assert stray.exists()


def test_merge_without_shards_or_output_still_says_so(tmp_path):
    skeleton_cache(tmp_path / "demo")
    with pytest.raises(MMCLError, match="no shard files"):
        merge_shards(tmp_path / "demo", SET)


TWELVE = [f"S001C001P{p:03d}R001A{a:03d}" for p in (1, 2, 3) for a in (1, 8, 9, 23)]


def test_shards_run_with_different_batch_sizes_are_refused(tmp_path):
    """#21 item 6: 0/2 at batch 2 and 1/2 at batch 10 of 12 samples merged (exit 0) with 4 never extracted."""
    dataset_dir = tmp_path / "demo"
    cache = skeleton_cache(dataset_dir, TWELVE)
    write_shard(cache, Shard(0, 2), batch_size=2)  # rows 0 1 4 5 8 9
    write_shard(cache, Shard(1, 2), batch_size=10)  # rows 10 11: rows 2 3 6 7 are in no shard
    with pytest.raises(MMCLError, match=r"different --batch-size \(0/2 at 2, 1/2 at 10\).*one --batch-size"):
        merge_shards(dataset_dir, SET)
    assert not (dataset_dir / FEATURES_DIR / f"{SET}.h5").exists()


def test_a_shard_missing_some_of_its_rows_is_refused(tmp_path):
    dataset_dir = tmp_path / "demo"
    cache = skeleton_cache(dataset_dir, TWELVE)
    write_shard(cache, Shard(0, 2), batch_size=2)
    short = write_shard(cache, Shard(1, 2), batch_size=2, rows=[2, 3, 6, 7])  # rows 10 11 lost
    says = f"{short.name}: holds 4 of the 6 samples its run was given \\(e.g. rows 10, 11\\)"
    with pytest.raises(MMCLError, match=says):
        merge_shards(dataset_dir, SET)


def test_shards_with_a_limit_merge_with_the_rest_invalid(tmp_path):
    dataset_dir = tmp_path / "demo"
    cache = skeleton_cache(dataset_dir, TWELVE)
    for shard in (Shard(0, 2), Shard(1, 2)):
        write_shard(cache, shard, batch_size=2, limit=2)  # rows 0 1 and 2 3
    merged = merge_shards(dataset_dir, SET).block
    assert merged.rgb_valid.tolist() == [True] * 4 + [False] * 8
