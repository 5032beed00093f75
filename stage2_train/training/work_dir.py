"""A training run's work dir: a new one per run where none is given, the lock that keeps it to one
`mmcl train`, and where its checkpoints lie."""

from __future__ import annotations

import contextlib
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from shared.cache_io import output_lock, remove_stale
from shared.errors import LockedError

from .config import TrainConfig
from .run_dirs import new_run_dir, point_latest, train_run_name


def new_work_dir(cfg: TrainConfig, acc: Accelerator) -> Path:
    """A new `runs/<dataset>-<protocol>-<stream>-seed<S>-<time>` (the main process's clock, so every
    process of a DDP run writes to the same one), and `runs/<...>-latest` pointing at it."""
    name = train_run_name(cfg.data.dataset, cfg.data.protocol, cfg.data.stream, cfg.model.backbone)
    folder = [str(new_run_dir(name, f"seed{cfg.seed}"))]
    if acc.num_processes > 1:
        folder = broadcast_object_list(folder)
    path = Path(folder[0])
    if acc.is_main_process:
        path.mkdir(parents=True, exist_ok=True)
        point_latest(path, name)
    return path


@contextlib.contextmanager
def work_dir_lock(work_dir: Path, acc: Accelerator):
    """One `mmcl train` per work dir: the main process holds `<work dir>/train.lock`."""
    with contextlib.ExitStack() as held:
        if acc.is_main_process:
            try:
                held.enter_context(output_lock(work_dir / "train"))  # also clears the work dir's stale files
            except LockedError as e:
                raise LockedError(f"{work_dir} is in use by another `mmcl train` ({e})") from None
            remove_stale(checkpoint_dir(work_dir))  # .epoch-NNN.pt.tmp-<pid> of killed runs
        yield


def checkpoint_dir(work_dir: str | Path) -> Path:
    return Path(work_dir) / "checkpoints"


def last_checkpoint(work_dir: str | Path) -> Path:
    return Path(work_dir) / "last.pt"
