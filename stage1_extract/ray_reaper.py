"""The local Ray cluster of a run dies with the run, within a second, even when the run is SIGKILLed.

Ray ties its head processes to the driver (the kernel SIGKILLs the GCS and the raylet when the
driver dies) and its workers end about 2 s later, but the dashboard agent and the runtime-env
agent, which watch the raylet, then try to report the raylet's death to the GCS that is gone and
wait out a fixed 60 s timeout (`publish_error(..., 60)` in ray/_private/process_watcher.py; no
setting changes it (RAY_gcs_rpc_server_reconnect_timeout_s=3 did not), and `include_dashboard=False`
does not remove the agents). Ray's own reaper (ray_process_reaper.py) runs only where the kernel
cannot fate-share, and kills the driver's whole process group (a shell pipeline's `tee` with it).
Measured: the agents outlived a SIGKILLed `mmcl extract --engine ray` by 61 s; workers by 2.3 s.

So a run that starts its own Ray also starts this reaper: a small process (standard library only,
in a session of its own so that Ctrl-C reaches it only through the run) that reads a pipe from the
run. End of file (the run closed it after `ray.shutdown()`, or the run died and the kernel closed
it) makes it SIGKILL the Ray session's processes: those of the run's terminal session that hold a
file of the Ray session folder open (every Ray process keeps its log files there), until none is
left or `SWEEP_S` has passed. Linux only (it reads /proc); elsewhere Ray's own fate-sharing stays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SWEEP_S = 5.0  # how long the reaper keeps killing the session's processes (new ones may still start)
PAUSE_S = 0.05


class RayReaper:
    """Started by the run after `ray.init` started a local cluster; `close()` after `ray.shutdown()`."""

    def __init__(self, session_dir: str) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                os.path.abspath(__file__),
                os.path.realpath(session_dir),
                str(os.getsid(0)),
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    @classmethod
    def if_started_here(cls, session_dir: str) -> RayReaper | None:
        """A reaper where `ray.init` started the cluster's processes as children of this process;
        None where it joined a running cluster (RAY_ADDRESS, `ray start`), which is not the run's."""
        if not sys.platform.startswith("linux"):
            return None
        me = os.getpid()
        if not any(parent_of(pid) == me for pid in session_processes(os.path.realpath(session_dir), os.getsid(0))):
            return None
        return cls(session_dir)

    def close(self) -> None:
        """Sweep what `ray.shutdown()` left and wait for the reaper to end."""
        self._process.stdin.close()
        try:
            self._process.wait(timeout=SWEEP_S + 5)
        except subprocess.TimeoutExpired:  # should not happen; a reaper must never block the run's end
            self._process.kill()
            self._process.wait()


def session_processes(session_dir: str, sid: int, spare: int | None = None) -> list[int]:
    """Pids of terminal session `sid` with a file under `session_dir` open, but for this process and
    `spare` (the run: Ray Data logs there too)."""
    prefix, found = session_dir.rstrip(os.sep) + os.sep, []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (os.getpid(), spare):
            continue
        try:
            if os.getsid(int(name)) != sid:
                continue
            fds = os.listdir(f"/proc/{name}/fd")  # another user's process: PermissionError, skipped
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}").startswith(prefix):
                    found.append(int(name))
                    break
            except OSError:  # closed meanwhile
                continue
    return found


def parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])  # after the command name, which may hold spaces
    except (OSError, IndexError, ValueError):
        return None


def reap(session_dir: str, sid: int, run: int, seconds: float = SWEEP_S) -> None:
    deadline = time.monotonic() + seconds
    while (pids := session_processes(session_dir, sid, spare=run)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(PAUSE_S)


def main(session_dir: str, sid: str, run: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run handles Ctrl-C, then closes the pipe
    while sys.stdin.buffer.read(4096):
        pass
    reap(session_dir, int(sid), int(run))


if __name__ == "__main__":
    main(*sys.argv[1:])
