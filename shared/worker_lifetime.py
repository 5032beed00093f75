"""Worker processes that die with their parent.

A SIGKILLed main process runs no cleanup, so its workers (DataLoader decoders, skeleton parsers)
would live on: a DataLoader worker blocks forever in its queue's feeder thread, a process-pool
worker waits forever for work. `die_with_parent` is the worker initializer that prevents it: on
Linux the kernel sends the worker SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG); everywhere
a daemon thread also watches the parent pid and ends the worker when it changes (the fallback where
prctl is missing, and a second line of defence).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_INTERVAL_S = 0.5  # how soon the fallback notices an orphaned worker


def die_with_parent(parent_pid: int) -> None:
    """Call first thing in a worker started by `parent_pid`: the worker ends when that process dies."""
    _set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="watch-parent", daemon=True).start()


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):  # no libc prctl (e.g. a static or exotic build): the watcher suffices
        pass


def _watch(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    # _exit, not exit: a normal exit would join the queue threads, which block without a reader
    os._exit(1)


class DieWithParent:
    """A picklable per-worker initializer for DataLoader's worker_init_fn (called with the worker id),
    bound to the process that builds the loader."""

    def __init__(self, then=None):
        self.parent_pid, self.then = os.getpid(), then

    def __call__(self, *args) -> None:
        die_with_parent(self.parent_pid)
        if self.then is not None:
            self.then(*args)
