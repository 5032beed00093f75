"""Crash-safe file writing and per-output locks, shared by every cache writer.

A file is written under a temporary name (`.<name>.tmp-<pid>`) in the same folder and renamed over
the target when it is complete, so a killed writer never leaves a file that reads as complete.
Locks are kernel advisory locks (flock) on `<output>.lock`: the kernel drops them when the process
dies, so a killed run never blocks its rerun. A lock belongs to the process that took it: a forked
child closes its copy at once (flock is shared by every copy of the descriptor, so a child that
outlived its parent would otherwise keep the output locked). What killed runs leave beside an
output (lock files nobody holds, temporary files of processes that are gone) is removed by the
next run that takes a lock in that folder; nothing of a live process is touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import time
from pathlib import Path

from .errors import LockedError, OutputError

LOCK_SUFFIX = ".lock"
TMP_MARK = ".tmp-"  # temporary files: .<name>.tmp-<pid of the writer>
LOCK_RETRIES = 50  # x 10 ms: how long a lock file being removed by a cleaner may look held

SPACE_ERRORS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
OUTPUT_ERRORS = SPACE_ERRORS + (errno.EROFS, errno.EACCES, errno.EPERM)  # a write failed for the output's sake

_held_locks: set[int] = set()  # descriptors of the locks this process holds


def _drop_inherited_locks() -> None:
    for fd in _held_locks:
        with contextlib.suppress(OSError):
            os.close(fd)  # the parent's copy keeps the lock
    _held_locks.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def output_error(path: Path, error: OSError, needed: int | None = None, written: int | None = None) -> OutputError:
    """One line: which file, what failed, the space involved where known, and what to do."""
    path = Path(path)
    text = f"cannot write {path}: {error.strerror or error}"
    if error.errno not in SPACE_ERRORS:
        return OutputError(f"{text}; choose a writable --out")
    if needed:
        text += f"; it needs about {_mb(needed)}"
    elif written:
        text += f" after {_mb(written)}"
    with contextlib.suppress(OSError):
        text += f" ({_mb(shutil.disk_usage(path.parent).free)} free in {path.parent})"
    return OutputError(f"{text}; finished work is kept: make room (or raise the file-size limit) and rerun")


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size < 1e7 else f"{size / 1e6:.0f} MB"


def make_folder(folder: Path, exist_ok: bool = True) -> None:
    """mkdir -p, or one OutputError line naming the folder (read-only file system, full disk)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=exist_ok)
    except FileExistsError:
        raise
    except OSError as e:
        raise output_error(Path(folder), e) from None


def tmp_path_of(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to `path`; on success rename it over `path`, else delete it."""
    path = Path(path)
    make_folder(path.parent)
    tmp = tmp_path_of(path)
    try:
        try:
            yield tmp
        except OSError as e:  # the writer's own write failed (full disk, read-only, size limit)
            if e.errno not in OUTPUT_ERRORS:
                raise
            raise output_error(path, e) from None
        except RuntimeError as e:  # torch's writers wrap a failed write ("enforce fail") around its OSError
            if not (isinstance(e.__context__, OSError) and e.__context__.errno in OUTPUT_ERRORS):
                raise
            raise output_error(path, e.__context__) from None
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        except OSError as e:
            raise output_error(path, e) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _holder(fd: int) -> int | None:
    text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _same_file(fd: int, path: Path) -> bool:
    """Whether `fd` is still the file at `path` (a releasing run or a cleaner may have removed it)."""
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _acquire(lock_path: Path, path: Path) -> int:
    for attempt in range(LOCK_RETRIES):
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if holder is not None and not pid_alive(holder) and attempt + 1 < LOCK_RETRIES:
                # its owner is gone: a cleaner holds the stale file for a moment to remove it
                time.sleep(0.01)
                continue
            raise LockedError(
                f"another process (pid {holder or 'unknown'}) is writing {path}; wait for it to finish or "
                f"stop it (lock: {lock_path})"
            ) from None
        if _same_file(fd, lock_path):
            return fd
        os.close(fd)  # we locked a file that was just removed: take the new one
    raise LockedError(f"could not lock {path}: {lock_path} keeps changing; is another run starting?")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike):
    """Hold an exclusive lock on `path` for the duration; fail at once if another process has it.
    Taking it also removes what killed runs left in the folder (see remove_stale)."""
    path = Path(path)
    make_folder(path.parent)
    lock_path = path.with_name(path.name + LOCK_SUFFIX)
    try:
        fd = _acquire(lock_path, path)
    except OSError as e:
        raise output_error(lock_path, e) from None
    _held_locks.add(fd)
    try:
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as e:
            raise output_error(lock_path, e) from None
        remove_stale(path.parent)
        yield
    finally:
        _held_locks.discard(fd)
        with contextlib.suppress(OSError):
            lock_path.unlink()  # while it is still held: nobody else can be using the file
        os.close(fd)  # closing the descriptor releases the flock


def remove_stale(folder: Path) -> list[Path]:
    """Delete, in `folder`, lock files that no process holds and temporary files whose writing
    process is gone; return what was deleted. Files of live processes are kept."""
    removed = []
    for lock in Path(folder).glob(f"*{LOCK_SUFFIX}"):
        if _remove_if_unheld(lock):
            removed.append(lock)
    for tmp in Path(folder).glob(f".*{TMP_MARK}*"):
        pid = tmp.name.rsplit(TMP_MARK, 1)[1]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _remove_if_unheld(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner is alive
        if not _same_file(fd, lock):
            return False
        lock.unlink()  # unlinked while locked: a run that opened it meanwhile sees it changed and retries
        return True
    finally:
        os.close(fd)
