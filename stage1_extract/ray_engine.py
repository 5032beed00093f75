"""Stage 1 on Ray Data (`mmcl extract --engine ray`): the same batches as the single-process run,
decoded by CPU tasks and answered by a pool of model actors, written by the driver.

    batches (rows fixed by resume.plan_chunks)  ->  map: decode + temporal image (CPU tasks)
        ->  map_batches: ModelWorker actors (RGB encoder, MLLM backend, text encoder; a GPU each)
        ->  driver: feature blocks gathered per chunk, each chunk committed once as a part file

One Ray row is one model batch, so every model call sees the samples a single-process run gives it
and the numbers agree. The driver keeps the output lock, the resume state and the writing (the
project's own part files and merge), so a rerun of either engine continues the other's work. Ray
restarts a killed actor and retries the batch it held; the driver keys results by batch, so a
retried batch is never written twice and the run ends only when every batch has come back.
Nodes of a cluster must see the dataset, the cache and the models at the same paths.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm import tqdm

from shared.cache_schema import FeatureBlock, FeatureHeader, SkeletonCache
from shared.errors import MMCLError
from shared.dataset_spec import DatasetSpec

from .allocator import keep_freed_memory
from .decode import Decoded, TemporalImages
from .extract import Extraction, FailureStreak, account
from .featurize import StageTimes, Timer
from .model_specs import ModelSpecs
from .provenance import attr_differences
from .ray_reaper import RayReaper
from .resume import batches_of, check_parts_header, commit_chunk
from .summary import Summary
from .temporal_image import TemporalImageConfig

INSTALL_HINT = "--engine ray needs Ray, which is not installed: pip install 'mmcl-action[ray]'"
PAYLOAD = "payload"  # the one column of both Ray stages: a pickled list of Decoded / an Outcome
# What a decoding task holds: a worker process with torch loaded (about 300 MB, as Ray Data
# measures it), one video's K full-size frames at a time and the batch's images. Declaring it
# also keeps decoding a stage of its own: Ray Data fuses a map into the next map_batches when
# their resource requests match, and the actors would then decode serially.
DECODE_MEMORY = 512 * 2**20


@dataclass(frozen=True)
class RayEngine:
    """`mmcl extract --engine ray`: where and on how many workers (extract.Engine)."""

    address: str | None = None  # None: a local Ray started for this run; "auto" or HOST:PORT: a cluster
    workers: int = 1  # model actors
    gpus_per_worker: float | None = None  # None: 1 where the cluster has GPUs and --device allows
    cpus_per_worker: float = 1.0  # also the actor's torch threads (at least 1)
    cpus_per_decode: float = 1.0  # each decoding task

    def run(self, extraction: Extraction, chunks: list[np.ndarray], summary: Summary) -> None:
        """The pending `chunks` of `extraction` through Ray; each finished chunk committed as a
        part. Uses the Ray of this process if it is already initialised, else starts or joins one."""
        ray = require_ray()
        _quiet_ray_data()
        started, reaper = not ray.is_initialized(), None
        if started:
            context = ray.init(
                address=self.address, include_dashboard=False, logging_level="WARNING", log_to_driver=False
            )
            reaper = RayReaper.if_started_here(context.address_info["session_dir"])  # dies with the run
        try:
            _gather(extraction, chunks, summary, _pipeline(ray, extraction, chunks, self))
        finally:
            try:
                if started:
                    ray.shutdown()
            finally:
                if reaper is not None:
                    reaper.close()


def _quiet_ray_data() -> None:
    """Ray Data's per-run notes (plans, log folders) would cut through our progress bar; its
    warnings stay. It warns that its own bars are off: ours replaces them."""
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def require_ray():
    """The `ray` module, or the one line that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is the extra's `ray[data]`
    except ImportError:
        raise MMCLError(INSTALL_HINT) from None
    return ray


# --------------------------------------------------------------------------- the Ray stages


@dataclass(frozen=True)
class DecodeSource:
    """What a decoding task needs, by path (each task opens the skeleton file itself)."""

    skeletons: Path
    dataset: DatasetSpec
    video_dir: Path
    image: TemporalImageConfig
    images_dir: Path | None
    keep_crops: bool  # --frame-features


@lru_cache(maxsize=4)
def _skeletons(path: Path) -> SkeletonCache:
    return SkeletonCache(path)  # one open file per worker process, reused by its later tasks


def decode_batch(row: dict, source: DecodeSource) -> dict:
    """Ray map: the batch's samples decoded, cropped and stitched (as the DataLoader workers do)."""
    import torch

    torch.set_num_threads(1)  # decoding and cropping: one thread, like a DataLoader worker
    rows = np.asarray(row["rows"], np.int64)
    images = TemporalImages(
        rows,
        _skeletons(source.skeletons),
        source.dataset,
        source.video_dir,
        source.image,
        source.images_dir,
        source.keep_crops,
    )
    return {"position": row["position"], PAYLOAD: pickle.dumps([images[i] for i in range(len(rows))])}


@dataclass
class Outcome:
    """One batch answered by a worker: its feature block, stage times and the decoded items
    without their images (the driver needs only their names and decode times)."""

    position: int  # of the batch in the run's plan
    block: FeatureBlock
    times: StageTimes
    decoded: list[Decoded]
    pid: int
    header: FeatureHeader | None = None  # the worker's first outcome carries its header
    load_s: float = 0.0  # and how long it took to load the models


class ModelWorker:
    """A Ray actor holding the three models; one call answers one batch (`featurize.run_models`)."""

    def __init__(
        self, models: ModelSpecs, batch_size: int, skeletons: Path, dataset: DatasetSpec, request: dict, threads: int
    ):
        import torch

        from .featurize import load_models
        from .provenance import feature_header

        torch.set_num_threads(threads)
        keep_freed_memory()  # the models' large activations reuse heap pages (allocator.py)
        t0 = time.perf_counter()
        self.models = load_models(models, batch_size, tuple(request["image_size"]))
        self.load_s = time.perf_counter() - t0
        self.header = feature_header(_skeletons(skeletons), dataset, request, self.models)
        self.header_sent = False

    def __call__(self, batch: dict) -> dict:
        from .featurize import run_models

        decoded: list[Decoded] = pickle.loads(batch[PAYLOAD][0])
        times = StageTimes()
        block = run_models(decoded, self.models, self.header, times)
        outcome = Outcome(
            int(batch["position"][0]),
            block,
            times,
            [dataclasses.replace(d, image=None, crops=None) for d in decoded],
            os.getpid(),
        )
        if not self.header_sent:
            outcome.header, outcome.load_s, self.header_sent = self.header, self.load_s, True
        return {PAYLOAD: np.array([pickle.dumps(outcome)], dtype=object)}


# --------------------------------------------------------------------------- the driver


def _pipeline(ray, extraction: Extraction, chunks: list[np.ndarray], options: RayEngine):
    from ray.data import ActorPoolStrategy, DataContext

    config, paths = extraction.config, extraction.paths
    for folder in (paths.parts,) + ((paths.images,) if config.save_images else ()):
        folder.mkdir(parents=True, exist_ok=True)
    gpus = _gpus_per_worker(ray, options, config.models)
    _check_resources(ray, options, gpus)
    DataContext.get_current().enable_progress_bars = False  # ours is the progress bar
    rows = np.concatenate(chunks)
    plan = [
        {"position": i, "rows": rows[positions]} for i, positions in enumerate(batches_of(chunks, config.batch_size))
    ]
    source = DecodeSource(
        extraction.skeletons.path,
        extraction.spec,
        extraction.video_dir,
        config.image,
        paths.images if config.save_images else None,
        config.frame_features,
    )
    # Ray Data restarts a dead actor and retries its batch by default (max_restarts and
    # max_task_retries of -1 for actor pools), which is what no batch lost needs.
    return (
        ray.data.from_items(plan, override_num_blocks=len(plan))
        .map(decode_batch, fn_kwargs={"source": source}, num_cpus=options.cpus_per_decode, memory=DECODE_MEMORY)
        .map_batches(
            ModelWorker,
            batch_size=1,
            compute=ActorPoolStrategy(size=options.workers),
            num_cpus=options.cpus_per_worker,
            num_gpus=gpus,
            fn_constructor_kwargs=dict(
                models=_on_worker(config.models, gpus),
                batch_size=config.batch_size,
                skeletons=extraction.skeletons.path,
                dataset=extraction.spec,
                request=extraction.request,
                threads=max(1, math.floor(options.cpus_per_worker)),
            ),
        )
    )


def _gpus_per_worker(ray, options: RayEngine, models: ModelSpecs) -> float:
    if options.gpus_per_worker is not None:
        return options.gpus_per_worker
    if models.device == "cpu":
        return 0.0
    return 1.0 if models.device.startswith("cuda") or ray.cluster_resources().get("GPU", 0) >= 1 else 0.0


def _on_worker(models: ModelSpecs, gpus: float) -> ModelSpecs:
    """Ray shows each worker only the GPUs it was given: an index in `--device cuda:1` names a GPU
    of the driver's machine, not one of the worker's, so the worker uses its own."""
    return dataclasses.replace(models, device="cuda") if gpus and models.device.startswith("cuda:") else models


def _check_resources(ray, options: RayEngine, gpus: float) -> None:
    """Fail now, not hang: the actors and at least one decoding task must fit in the cluster."""
    have = ray.cluster_resources()
    cpus = options.workers * options.cpus_per_worker + options.cpus_per_decode
    if have.get("CPU", 0) < cpus:
        raise MMCLError(
            f"the Ray cluster has {have.get('CPU', 0):g} CPUs; {options.workers} workers x "
            f"{options.cpus_per_worker:g} CPUs plus a decoding task of {options.cpus_per_decode:g} "
            f"need {cpus:g}: lower --ray-workers or --cpus-per-worker"
        )
    if gpus and have.get("GPU", 0) < options.workers * gpus:
        raise MMCLError(
            f"the Ray cluster has {have.get('GPU', 0):g} GPUs; {options.workers} workers x {gpus:g} "
            f"GPUs do not fit: lower --ray-workers or --gpus-per-worker (0: the models on CPU)"
        )


def _gather(extraction: Extraction, chunks: list[np.ndarray], summary: Summary, dataset) -> None:
    """The driver loop: outcomes in any order, kept by batch; a chunk is committed once, when all
    its batches are in."""
    config, paths = extraction.config, extraction.paths
    counts = [len(range(0, len(c), config.batch_size)) for c in chunks]
    chunk_of = np.repeat(np.arange(len(chunks)), counts)  # batch position -> chunk
    first = np.concatenate([[0], np.cumsum(counts)])  # chunk -> its first batch position
    pending: dict[int, dict[int, FeatureBlock]] = {}
    committed: set[int] = set()
    header: FeatureHeader | None = None
    failing = FailureStreak(config.abort_after)
    bar = tqdm(
        total=summary.total,
        initial=summary.skipped,
        unit="sample",
        dynamic_ncols=True,
        desc=f"{extraction.spec.name} features (ray)",
        disable=not config.progress,
    )
    t0 = time.perf_counter()
    for row in dataset.iter_rows():
        outcome: Outcome = pickle.loads(row[PAYLOAD])
        if summary.processed == 0:
            summary.first_batch_s = time.perf_counter() - t0
        if outcome.header is not None:
            header = _checked_header(paths, header, outcome)
            summary.load_s = max(summary.load_s, outcome.load_s)
        chunk = int(chunk_of[outcome.position])
        blocks = pending.setdefault(chunk, {})
        if chunk in committed or outcome.position in blocks:
            continue  # a batch Ray ran twice: its first result counts
        blocks[outcome.position] = outcome.block
        failing.update(outcome.block)
        account(summary, outcome.decoded, outcome.block)
        _add_times(summary.times, outcome.times)
        bar.update(len(outcome.decoded))
        bar.set_postfix(failed=summary.failed_now, refresh=False)
        if len(blocks) == counts[chunk]:
            with Timer(summary.times, "write"):
                commit_chunk(
                    paths, header, [blocks[p] for p in range(first[chunk], first[chunk + 1])], extraction.stamps
                )
            committed.add(chunk)
            del pending[chunk]
    bar.close()
    missing = len(chunks) - len(committed)
    if missing:  # Ray Data raises when a batch fails for good; this is a guard, not a path
        raise MMCLError(f"the Ray run ended with {missing} chunks unfinished; finished chunks are kept: rerun")


def _checked_header(paths, header: FeatureHeader | None, outcome: Outcome) -> FeatureHeader:
    """The first worker's header (checked against earlier parts); every other worker must agree:
    a node with other models or library versions would mix two feature sets."""
    if header is None:
        check_parts_header(paths, outcome.header)
        return outcome.header
    diff = attr_differences(header.attrs, outcome.header.attrs)
    if diff or outcome.header.questions != header.questions:
        raise MMCLError(
            f"Ray worker pid {outcome.pid} loaded other models or libraries than the first "
            f"({'; '.join(diff) or 'questions differ'}); install the same versions on every node"
        )
    return header


def _add_times(total: StageTimes, more: StageTimes) -> None:
    for stage, seconds in dataclasses.asdict(more).items():
        total.add(stage, seconds)
