"""The decode stage of stage 1, run in DataLoader worker processes: per sample its video decoded,
the skeleton-guided crops and the stitched temporal image, a few batches ahead of the models."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError
from shared.dataset_spec import DatasetSpec
from shared.sample_names import file_inside
from shared.worker_lifetime import DieWithParent

from .allocator import keep_freed_memory
from .temporal_image import TemporalImageConfig, from_frames
from .video import check_covers_skeleton, open_frames, video_path


@dataclass
class Decoded:
    """One sample after the decode stage: its temporal image and crops, or why there is none."""

    row: int
    name: str
    image: Image.Image | None = None
    crops: list[Image.Image] | None = None
    error: str | None = None
    decode_s: float = 0.0
    compose_s: float = 0.0


class TemporalImages(Dataset):
    """Item i: the temporal image of skeleton row `rows[i]`, decoded and cropped in the worker."""

    def __init__(
        self,
        rows: np.ndarray,
        skeletons: SkeletonCache,
        spec: DatasetSpec,
        video_dir: Path,
        config: TemporalImageConfig,
        images_dir: Path | None,
        keep_crops: bool = False,
    ):
        self.rows, self.skeletons, self.spec = rows, skeletons, spec
        self.video_dir, self.config, self.images_dir = video_dir, config, images_dir
        self.keep_crops = keep_crops  # sent to the models only for --frame-features

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Decoded:
        row = int(self.rows[i])
        item = Decoded(row, self.skeletons.names[row])
        try:
            t0 = time.perf_counter()
            skeleton = self.skeletons.sample(row)
            source = open_frames(video_path(self.spec, self.video_dir, item.name))
            frames, indices = source.sample(self.config.frames)  # a video: one decode, checked for damage
            check_covers_skeleton(source, int(skeleton["frame_index"][-1]) + 1)
            t1 = time.perf_counter()
            result = from_frames(
                frames, indices, skeleton, self.skeletons.color_resolution, self.config, self.spec.layout_name
            )
            item.image, item.crops = result.image, result.crops if self.keep_crops else None
            item.decode_s, item.compose_s = t1 - t0, time.perf_counter() - t1
        except MMCLError as e:  # VideoError, or no folder for the sample
            item.error = str(e)
        except Exception as e:  # noqa: BLE001 - one odd video must not stop the run
            item.error = f"{type(e).__name__}: {e}"
        if item.image is not None and self.images_dir is not None:
            try:
                item.image.save(file_inside(self.images_dir, f"{item.name}.jpg"), quality=90)
            except MMCLError as e:
                item.error, item.image = str(e), None
        return item


def _as_list(batch: list[Decoded]) -> list[Decoded]:
    return batch


def _quiet_worker(_: int) -> None:
    torch.set_num_threads(1)  # workers decode and crop; they must not compete with the models' threads
    keep_freed_memory()  # decoded frames reuse heap pages, not fresh mmaps (allocator.py)


def prefetch(dataset: TemporalImages, batches: list[list[int]], workers: int) -> Iterator[list[Decoded]]:
    """Decoded batches in order, produced by `workers` processes a few batches ahead (bounded).

    Workers are spawned, not forked: a forked worker would share the output's lock (flock belongs
    to the open file, which fork shares) and keep it after the main process is killed, and would
    inherit any GPU context. Workers die with the main process (a SIGKILLed run leaves none)."""
    loader = DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=_as_list,
        worker_init_fn=DieWithParent(then=_quiet_worker) if workers else None,
        multiprocessing_context="spawn" if workers else None,
        prefetch_factor=4 if workers else None,
    )
    return iter(loader)
