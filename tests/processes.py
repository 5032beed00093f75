"""Process helpers for the kill tests: children of a pid, whether a pid still runs, waiting
(bounded) for pids to end, killing by pid."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # an unreaped orphan (zombie) has ended too
    return not stat.exists() or _stat_fields(stat)[0] != "Z"


def _stat_fields(stat: Path) -> list[str]:
    """state, ppid, ... (the fields after the command name, which may hold spaces)."""
    return stat.read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    """Every live descendant of `pid` (Linux: read from /proc)."""
    parent_of = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = _stat_fields(stat)
        except (OSError, IndexError):  # ended while we looked
            continue
        if fields[0] != "Z":
            parent_of[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, pp in parent_of.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after at most `seconds`."""
    deadline = time.monotonic() + seconds
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_files(run, folder: Path, pattern: str, what: str, timeout: float = 300) -> None:
    """Poll until `folder` holds a file matching `pattern`, while the process `run` still runs."""
    deadline = time.monotonic() + timeout
    while not list(folder.glob(pattern)):
        assert run.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"not in time: {what}"
        time.sleep(0.005)
