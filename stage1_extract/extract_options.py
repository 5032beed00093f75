"""`mmcl extract`'s options as one typed object (issue #22): built once from the command's flags
(`ExtractOptions(**params)`), then read by the one mode that runs (`extract_modes`). What several
modes derive from the flags (the models, the batch size, the feature set's name, the run's
`ExtractConfig`) is derived here, once.

Torch-free, like the command's module: `mmcl extract --help` imports it."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from shared.custom_dataset import CUSTOM, load_manifest
from shared.errors import MMCLError
from shared.registry import default_root

from .model_specs import TRANSFORMERS_BATCH_SIZE, VLLM_BATCH_SIZE, ModelSpecs, VLLMEngine
from .temporal_image import TemporalImageConfig

if TYPE_CHECKING:
    from .extract import ExtractConfig
    from .shards import Shard


@dataclass(frozen=True)
class ExtractOptions:
    """One field per flag of `mmcl extract`, named as the flag (`--rgb-encoder`: `rgb_encoder`), typed as
    its click type converts it. The defaults live on the flags only."""

    # what to extract, from where, into where
    dataset: str
    root: Path | None
    manifest: Path | None
    out: Path
    # the models
    mllm: str
    backend: str
    rgb_encoder: str
    text_encoder: str
    prompts: Path | None
    device: str
    vllm_tensor_parallel_size: int
    vllm_gpu_memory_utilization: float
    vllm_max_model_len: int
    vllm_dtype: str
    # the temporal images
    frames: int  # K
    image_size: tuple[int, int] | None  # (W, H)
    crop_margin: float
    # the run
    batch_size: int | None
    chunk_size: int
    limit: int | None
    shard: Shard | None
    feature_set: str | None
    frame_features: bool
    save_images: bool
    retry_failed: bool
    workers: int | None
    overlap: bool | None  # None: when the models are on a GPU
    quiet: bool
    # the flags that choose the mode (extract_modes.choose_mode) and their companions
    merge: bool
    skeletons_only: bool
    import_npz: Path | None
    names: Path | None  # with --import-npz
    protocol: str | None  # with --import-npz
    import_pyskl: Path | None
    engine: str  # single | ray
    ray_address: str | None
    ray_workers: int
    gpus_per_worker: float | None
    cpus_per_worker: float

    @property
    def imported(self) -> Path | None:
        """The file the skeletons are imported from (--import-npz or --import-pyskl), if any."""
        return self.import_npz or self.import_pyskl

    @property
    def progress(self) -> bool:
        return not self.quiet

    def for_custom_dataset(self) -> ExtractOptions:
        """With --manifest or --dataset custom: the options naming the custom dataset by its own name
        and its folder (the manifest's: its paths are relative to it)."""
        if self.dataset != CUSTOM:
            raise MMCLError(f"--manifest describes a dataset of your own: use --dataset {CUSTOM} with it")
        if self.manifest is None:
            raise MMCLError(f"--dataset {CUSTOM} needs --manifest FILE (the README's 'Your own data' shows one)")
        if self.root is not None:
            raise MMCLError(
                f"--root does not apply to --dataset {CUSTOM}: the paths in {self.manifest} are relative to it"
            )
        if self.imported:
            raise MMCLError(
                f"--import-npz and --import-pyskl make a built-in dataset's cache; a {CUSTOM} "
                f"dataset's skeletons come from its manifest"
            )
        return replace(self, dataset=load_manifest(self.manifest).spec.name, root=self.manifest.resolve().parent)

    @cached_property
    def models(self) -> ModelSpecs:
        engine = VLLMEngine(
            tensor_parallel_size=self.vllm_tensor_parallel_size,
            gpu_memory_utilization=self.vllm_gpu_memory_utilization,
            max_model_len=self.vllm_max_model_len,
            dtype=self.vllm_dtype,
        )
        return ModelSpecs(
            mllm=self.mllm,
            backend=self.backend,
            rgb_encoder=self.rgb_encoder,
            text_encoder=self.text_encoder,
            prompts=self.prompts,
            device=self.device,
            vllm=engine,
        )

    @cached_property
    def run_batch_size(self) -> int:
        """--batch-size; without it vLLM gets its own default (it schedules the requests itself; a
        small batch leaves the GPU idle)."""
        if self.batch_size is not None:
            return self.batch_size
        return VLLM_BATCH_SIZE if self.models.resolved_backend() == "vllm" else TRANSFORMERS_BATCH_SIZE

    @property
    def image(self) -> TemporalImageConfig:
        return TemporalImageConfig(frames=self.frames, size=self.image_size, margin=self.crop_margin)

    @cached_property
    def feature_set_name(self) -> str:
        """--feature-set made safe as a file name, or the name derived from the models and K."""
        from .provenance import default_feature_set_name, sanitize

        return sanitize(self.feature_set) if self.feature_set else default_feature_set_name(self.models, self.image)

    def extract_config(self) -> ExtractConfig:
        """The feature run's (and the skeleton cache's) settings; the dataset's folder must exist."""
        from .extract import ExtractConfig

        workers = default_workers(self.models.resolved_device()) if self.workers is None else self.workers
        return ExtractConfig(
            dataset=self.dataset,
            root=self.data_root(),
            out=self.out,
            models=self.models,
            image=self.image,
            batch_size=self.run_batch_size,
            chunk_size=self.chunk_size,
            limit=self.limit,
            shard=self.shard,
            feature_set=self.feature_set_name,
            save_images=self.save_images,
            frame_features=self.frame_features,
            retry_failed=self.retry_failed,
            workers=workers,
            progress=self.progress,
            manifest=self.manifest,
            overlap=self.overlap,
        )

    def data_root(self) -> Path:
        """--root, or the default folder of the dataset; an error naming the folder where it is missing."""
        if self.root is not None:
            if not self.root.is_dir():
                raise MMCLError(f"--root {self.root}: no such folder")
            return self.root
        root = default_root(self.dataset)
        if not root.is_dir():
            raise MMCLError(
                f"no {self.dataset} data at {root} (looked there because --root was not given); pass "
                f"--root DATA, or set MMCL_DATA to a folder holding '{self.dataset}/'"
            )
        return root


def default_workers(device: str, cores: int | None = None) -> int:
    """Decoding processes for `mmcl extract`: one decode costs about a quarter of the models' CPU time
    per sample (bench_extract's stage table), so with the models on the CPU a quarter of the cores
    (at least 1); with the models on a GPU every core but two (the main process feeding the GPU, the
    writer), at least 1."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // 4) if device == "cpu" else max(1, cores - 2)
