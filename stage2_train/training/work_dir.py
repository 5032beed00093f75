"""A training run's work dir: a new one per run where none is given, the lock that keeps it to one
`mmcl train`, where its checkpoints lie, which of them are kept and which one `--resume` reads."""

from __future__ import annotations

import contextlib
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from shared.cache_io import output_lock, remove_stale
from shared.errors import LockedError, MMCLError

from .checkpoint import Checkpoint, load_checkpoint
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


def prune_checkpoints(work_dir: str | Path, epoch: int, keep: int) -> list[Path]:
    """Delete checkpoints/epoch-NNN.pt older than the last `keep` epochs (0 keeps all); last.pt,
    which --resume reads, is never touched. Returns the files deleted."""
    if keep == 0:
        return []
    old = [
        p
        for p in checkpoint_dir(work_dir).glob("epoch-*.pt")
        if p.stem[len("epoch-") :].isdigit() and int(p.stem[len("epoch-") :]) <= epoch - keep
    ]
    for p in old:
        p.unlink(missing_ok=True)
    return old


def load_resume_checkpoint(work_dir: str | Path) -> Checkpoint:
    path = last_checkpoint(work_dir)
    if not path.exists():  # a run stopped between checkpoints/epoch-NNN.pt and last.pt (a full disk)
        saved = sorted(checkpoint_dir(work_dir).glob("epoch-[0-9][0-9][0-9]*.pt"))
        if not saved:
            raise MMCLError(f"--resume: no checkpoint at {path}; train without --resume first")
        path = saved[-1]
        print(f"--resume: no {last_checkpoint(work_dir).name}; continuing from {path}")
    return load_checkpoint(path)
