"""Stage 1 orchestration: skeleton cache, then per sample a temporal image, its RGB embeddings (FAM's
target) and the MLLM's instructive text features (FRM's input), written as one named feature set.

    cache/<dataset>/skeletons.h5
    cache/<dataset>/features/<name>.h5                 the feature set (complete)
    cache/<dataset>/features/<name>.shard-I-of-N.h5    one shard's rows, until `--merge`
    cache/<dataset>/features/<name>[.shard-I-of-N].parts/part-<row>.h5   finished chunks of a run

Never lose work: samples go through in chunks; each finished chunk is written atomically as a part
file, so a killed run restarts where it stopped. When every chunk is done the parts are merged into
the output and removed. Video decoding and cropping run in DataLoader worker processes, a few
batches ahead of the models; the models and the HDF5 writer run side by side (pipeline). A sample
that fails (missing video, model error) is recorded in the failures table and the run goes on; the
exit status says whether any failed.

The stages live beside this module: decode (worker processes), featurize (the models), pipeline (the
models and the writer side by side), provenance (what identifies a feature set), resume (chunks,
parts, restarts), shards, summary (the report); ray_engine runs the same chunks on a Ray cluster
instead (`--engine ray`).
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from shared.progress import progress_bar
from shared.cache_io import output_lock
from shared.cache_schema import SKELETON_FILE, FeatureBlock, FeatureHeader, SkeletonCache, read_feature_file
from shared.errors import MMCLError
from shared.dataset_spec import DatasetSpec
from shared.registry import find_dir, get_dataset

from .decode import Decoded, TemporalImages, prefetch
from .featurize import Models, check_model_sources, load_models, load_prompts_for
from .model_specs import TRANSFORMERS_BATCH_SIZE, ModelSpecs
from .provenance import default_feature_set_name, feature_header, request_attrs, sanitize
from .input_stamps import InputStamps
from .pipeline import Pipeline
from .resume import FeaturePaths, batches_of, check_parts_header, commit_chunk, finish, plan_chunks, read_progress
from .shards import Shard, ShardPlan
from .summary import Summary
from .temporal_image import TemporalImageConfig


@dataclass(frozen=True)
class ExtractConfig:
    dataset: str
    root: Path
    out: Path = Path("cache")
    models: ModelSpecs = ModelSpecs()
    image: TemporalImageConfig = TemporalImageConfig()
    batch_size: int = TRANSFORMERS_BATCH_SIZE
    chunk_size: int = 256  # samples per committed part file (rounded up to whole batches)
    limit: int | None = None
    shard: Shard | None = None
    feature_set: str | None = None
    save_images: bool = False
    retry_failed: bool = False  # extract recorded failures again
    frame_features: bool = False  # also rgb/frames: each crop's embedding (K encoder passes more per sample)
    workers: int = 2
    abort_after: int = 64  # stop when the models fail on this many samples in a row
    progress: bool = True
    manifest: Path | None = None  # a custom dataset's (shared.custom_dataset); `dataset` is then its name
    overlap: bool | None = None  # RGB and text encoders on threads beside the MLLM (None: on a GPU)

    @property
    def spec(self) -> DatasetSpec:
        if self.manifest is None:
            return get_dataset(self.dataset)
        from shared.custom_dataset import load_manifest

        return load_manifest(self.manifest).spec


def ensure_skeletons(spec: DatasetSpec, config: ExtractConfig) -> SkeletonCache:
    """The dataset's skeleton cache: built from the raw files when missing or made from other ones
    (see build_skeleton_cache). Used as it is by shards (it is written once, before them), by a
    --limit run, and when it was imported from CTR-GCN's npz (there are no raw files to compare)."""
    path = config.out / spec.name / SKELETON_FILE
    if path.exists() and (config.shard is not None or config.limit or _imported(path)):
        return SkeletonCache(path)
    if config.shard is not None:
        raise MMCLError(
            f"{path} does not exist: the skeleton file is written once before a sharded "
            f"run; run `mmcl extract --dataset {spec.name} --skeletons-only` first"
        )
    from .skeleton_cache import build_skeleton_cache

    build_skeleton_cache(
        spec, config.root, config.out, workers=config.workers or 1, limit=config.limit, progress=config.progress
    )
    return SkeletonCache(path)


def _imported(path: Path) -> bool:
    return "npz" in json.loads(SkeletonCache(path).attrs.get("params", "{}"))


class Engine(Protocol):
    """Runs an extraction's pending chunks somewhere else, committing each finished one as a part."""

    def run(self, extraction: "Extraction", chunks: list[np.ndarray], summary: Summary) -> None: ...


@dataclass
class Extraction:
    """One run of `config`: its dataset, skeleton cache, output paths and requested settings."""

    config: ExtractConfig
    spec: DatasetSpec
    skeletons: SkeletonCache
    video_dir: Path
    paths: FeaturePaths
    request: dict

    @classmethod
    def prepare(cls, config: ExtractConfig) -> "Extraction":
        spec = config.spec
        # Everything that can be wrong with the command is reported before the skeleton cache is built.
        check_model_sources(config.models)
        # a custom dataset's manifest names each video itself
        video_dir = config.root if spec.manifest else find_dir(config.root, spec.video_dirs, "video", spec)
        name = sanitize(config.feature_set or default_feature_set_name(config.models, config.image))
        request = request_attrs(
            spec, config.models, config.image, load_prompts_for(config.models), config.frame_features
        )
        skeletons = ensure_skeletons(spec, config)
        return cls(
            config, spec, skeletons, video_dir, FeaturePaths.of(config.out / spec.name, name, config.shard), request
        )

    @property
    def wanted(self) -> np.ndarray:
        """Skeleton rows this run covers: its shard, the first --limit of them."""
        n, plan, limit = len(self.skeletons), self.shard_plan, self.config.limit
        if plan is not None:
            return plan.rows(n)
        return np.arange(n)[:limit] if limit else np.arange(n)

    @cached_property
    def stamps(self) -> InputStamps:
        """Identity of each covered sample's input now (rows whose stored stamp differs are redone)."""
        return InputStamps(self.spec, self.video_dir, self.skeletons, self.wanted)

    @property
    def shard_plan(self) -> ShardPlan | None:
        config = self.config
        return None if config.shard is None else ShardPlan(config.shard, config.batch_size, config.limit)

    @property
    def skeleton_failures(self) -> list[tuple[str, str, str]]:
        """Samples the skeleton cache left out: they fail a whole-dataset run; a shard leaves them to
        `--merge`, else every shard of an array job would report the same samples."""
        return [] if self.config.shard is not None else self.skeletons.failures

    def run(self, models: Models | None = None, engine: Engine | None = None) -> Summary:
        """Extract the pending chunks (loading the models unless given, or on `engine`), then write
        the output."""
        config, paths, wanted = self.config, self.paths, self.wanted
        if not len(wanted):
            raise MMCLError(
                f"shard {config.shard.index}/{config.shard.count} holds no sample: "
                f"{self.skeletons.path} has only {len(self.skeletons)}"
            )
        t0 = time.perf_counter()
        with output_lock(paths.output):
            progress = read_progress(
                paths, wanted, self.skeletons.names_hash, self.request, self.stamps, config.retry_failed
            )
            if progress.finished is not None:
                shutil.rmtree(paths.parts, ignore_errors=True)  # left by a run killed after its merge
                return Summary(
                    progress.finished,
                    len(wanted),
                    len(wanted),
                    block=read_feature_file(progress.finished, require_complete=False)[1],
                    skeleton_failures=self.skeleton_failures,
                )
            chunks = plan_chunks(wanted, progress.done, config.chunk_size, config.batch_size)
            summary = Summary(
                paths.output, len(wanted), len(wanted) - sum(map(len, chunks)), skeleton_failures=self.skeleton_failures
            )
            if chunks and engine is not None:
                engine.run(self, chunks, summary)
            elif chunks:
                # Workers start before the models load: their start-up overlaps the loading.
                decoded = self.prefetch(chunks)
                t_load = time.perf_counter()
                models = models or load_models(config.models, config.batch_size, config.image.image_size)
                summary.load_s = time.perf_counter() - t_load
                header = feature_header(self.skeletons, self.spec, self.request, models)
                check_parts_header(paths, header)
                self.run_chunks(chunks, decoded, models, header, summary)
            summary.block = finish(paths, self.shard_plan)
        summary.seconds = time.perf_counter() - t0
        return summary

    def prefetch(self, chunks: list[np.ndarray]) -> Iterator[list[Decoded]]:
        config, paths = self.config, self.paths
        for folder in (paths.parts,) + ((paths.images,) if config.save_images else ()):
            folder.mkdir(parents=True, exist_ok=True)
        dataset = TemporalImages(
            np.concatenate(chunks),
            self.skeletons,
            self.spec,
            self.video_dir,
            config.image,
            paths.images if config.save_images else None,
            keep_crops=config.frame_features,
        )
        return prefetch(dataset, batches_of(chunks, config.batch_size), config.workers)

    def run_chunks(
        self,
        chunks: list[np.ndarray],
        decoded: Iterator[list[Decoded]],
        models: Models,
        header: FeatureHeader,
        summary: Summary,
    ) -> None:
        """The main loop: decoded batches through the models, the stages side by side (`pipeline`);
        each finished chunk committed."""
        bar = progress_bar(
            total=summary.total,
            initial=summary.skipped,
            unit="sample",
            dynamic_ncols=True,
            desc=f"{self.spec.name} features",
            disable=not self.config.progress,
        )
        failing = FailureStreak(self.config.abort_after)

        def collected(batch: list[Decoded], block: FeatureBlock) -> None:
            failing.update(block)
            account(summary, batch, block)
            bar.update(len(batch))
            bar.set_postfix(failed=summary.failed_now, refresh=False)

        device = self.config.models.resolved_device()
        overlap = device.startswith("cuda") if self.config.overlap is None else self.config.overlap
        pipeline = Pipeline(
            models,
            header,
            summary.times,
            overlap=overlap,
            device=device,
            collected=collected,
            commit=lambda blocks: commit_chunk(self.paths, header, blocks, self.stamps),
        )
        pipeline.run([len(chunk) for chunk in chunks], timed(decoded, summary))
        bar.close()


def extract_features(config: ExtractConfig, models: Models | None = None, engine: Engine | None = None) -> Summary:
    """Extract (or resume, or find complete) the feature set of `config`; returns the summary.
    `models`: already loaded models matching `config.models` (else they are loaded when needed).
    `engine`: runs the pending chunks elsewhere (ray_engine.RayEngine) instead of in this process."""
    extraction = Extraction.prepare(config)
    try:
        return extraction.run(models, engine)
    finally:
        extraction.skeletons.close()


def timed(decoded: Iterator[list[Decoded]], summary: Summary) -> Iterator[list[Decoded]]:
    """The decoded batches, recording how long the models waited for each (for the first: the
    workers' start-up, reported apart)."""
    for i in itertools.count():
        t0 = time.perf_counter()
        batch = next(decoded, None)
        if batch is None:
            return
        if i == 0:
            summary.first_batch_s = time.perf_counter() - t0
        else:
            summary.times.add("wait", time.perf_counter() - t0)
        yield batch


class FailureStreak:
    """Stops the run when the models fail on `limit` samples in a row: a broken model (or out of
    memory), not bad samples; finished chunks are kept."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def update(self, block: FeatureBlock) -> None:
        decoded = set(block.name) - {name for name, stage, _ in block.failures if stage == "video"}
        errors = [(name, reason) for name, stage, reason in block.failures if stage in ("rgb", "mllm")]
        if not decoded:
            return
        self.count = self.count + len(decoded) if decoded <= {name for name, _ in errors} else 0
        if self.count >= self.limit:
            name, reason = errors[-1]
            raise MMCLError(
                f"the models failed on {self.count} samples in a row (last: {name}: {reason}); "
                f"stopping. Finished chunks are kept: fix the cause and rerun"
            )


def account(summary: Summary, batch: list[Decoded], block: FeatureBlock) -> None:
    """Adds one batch's counts and decode times to the summary (`batch`: its images not needed)."""
    summary.processed += len(batch)
    summary.failed_now += len({name for name, _, _ in block.failures})
    for d in batch:
        summary.times.add("decode", d.decode_s)
        summary.times.add("compose", d.compose_s)
    answered = block.yes_prob[block.text_valid]
    summary.answers += answered.size
    summary.undetermined += int(np.isnan(answered).sum())
