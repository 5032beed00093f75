"""Output locks and what killed runs leave behind: a lock belongs to the process that took it (not
to children it forked), stale lock and temporary files are removed, those of live processes kept;
worker processes die with their parent."""

import os
import subprocess
import sys
import textwrap

import pytest
from processes import alive, kill_all, wait_gone

from shared import cache_io
from shared.cache_io import output_lock
from shared.errors import LockedError

DEADLINE_S = 10


def start(script: str) -> subprocess.Popen:
    """A Python process running `script`, its stdout readable line by line."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE, text=True)


def ended_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_forked_child_does_not_keep_the_lock_of_its_killed_parent(tmp_path):
    output = tmp_path / "out.h5"
    parent = start(f"""
        import os, time
        from shared.cache_io import output_lock
        with output_lock({str(output)!r}):
            child = os.fork()
            if child == 0:
                time.sleep(60)
                os._exit(0)
            print(child, flush=True)
            time.sleep(60)
    """)
    child = int(parent.stdout.readline())
    try:
        with pytest.raises(LockedError, match=f"pid {parent.pid}"):
            with output_lock(output):
                pass
        parent.kill()
        parent.wait()
        assert alive(child)
        with output_lock(output):  # the orphaned child does not hold it
            pass
    finally:
        kill_all([parent.pid, child])
        parent.wait()


def test_stale_locks_and_temporary_files_are_removed_those_of_live_processes_kept(tmp_path):
    gone = ended_pid()
    stale_lock, stale_tmp = tmp_path / "a.h5.lock", tmp_path / f".a.h5.tmp-{gone}"
    stale_lock.write_text(str(gone))
    stale_tmp.write_bytes(b"half a file")
    owner = start(f"""
        import os, time
        from shared.cache_io import atomic_path, output_lock
        with output_lock({str(tmp_path / "b.h5")!r}), atomic_path({str(tmp_path / "b.h5")!r}) as tmp:
            tmp.write_bytes(b"being written")
            print("ready", flush=True)
            time.sleep(60)
    """)
    try:
        assert owner.stdout.readline().strip() == "ready"
        live_lock, live_tmp = tmp_path / "b.h5.lock", tmp_path / f".b.h5.tmp-{owner.pid}"
        assert live_lock.exists() and live_tmp.exists()
        with output_lock(tmp_path / "c.h5"):  # taking any lock in the folder cleans it
            assert not stale_lock.exists() and not stale_tmp.exists()
            assert live_lock.exists() and live_tmp.exists()
            assert (tmp_path / "c.h5.lock").read_text() == str(os.getpid())
        assert not (tmp_path / "c.h5.lock").exists()  # released: removed
        with pytest.raises(LockedError, match=f"pid {owner.pid}"):
            with output_lock(tmp_path / "b.h5"):
                pass
        assert cache_io.remove_stale(tmp_path) == [] and live_lock.exists()
        owner.kill()
        owner.wait()
        assert sorted(cache_io.remove_stale(tmp_path)) == sorted([live_lock, live_tmp])  # now its owner is gone
    finally:
        kill_all([owner.pid])
        owner.wait()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_pool_workers_die_with_their_killed_parent():
    """The skeleton step's process pool: its workers end when the main process is SIGKILLed."""
    parent = start("""
        import os, time
        from shared import readers
        from shared.registry import DEMO
        paths = ["no-such-file.skeleton"] * 100000
        for i, _ in enumerate(readers.read_many(DEMO.name, paths, workers=2, progress=False)):
            if i == 0:
                import multiprocessing
                print(" ".join(str(c.pid) for c in multiprocessing.active_children()), flush=True)
            time.sleep(0.001)
    """)
    workers = [int(p) for p in parent.stdout.readline().split()]
    try:
        assert len(workers) == 2 and all(alive(p) for p in workers)
        parent.kill()
        parent.wait()
        assert wait_gone(workers, DEADLINE_S) == [], "pool workers outlived their killed parent"
    finally:
        kill_all(workers)
