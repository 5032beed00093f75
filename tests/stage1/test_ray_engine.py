"""`mmcl extract --engine ray` on a local 2-CPU Ray cluster with 2 model workers: the same cache as
the single-process run, a rerun that skips finished work, and a worker killed mid-batch that Ray
restarts with no sample lost or written twice; a SIGKILLed run leaves no Ray process behind.
Without Ray, one line saying how to install it."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from processes import children, kill_all, wait_gone
from stage1_demo import CLI_ENV, assert_same_features, cli_args, cli_command, config, new_cache

from shared.errors import MMCLError

pytestmark = pytest.mark.integration  # a local Ray cluster, killed workers

WORKER_TITLE = b"ray::MapWorker(MapBatches(ModelWorker))"  # the process title Ray gives the actors
# 2 workers of half a CPU each leave one CPU of the 2 for a decoding task at a time.
RAY_ARGS = ["--engine", "ray", "--ray-workers", "2", "--cpus-per-worker", "0.5"]
KILL_DEADLINE_S = 5  # Ray's own fate-sharing left its two agents 61 s after the run's SIGKILL


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the optional extra mmcl-action[ray] is not installed")
    ray.init(
        num_cpus=2,
        object_store_memory=128 * 2**20,
        include_dashboard=False,
        logging_level="WARNING",
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


def ray_engine(**kw):
    from stage1_extract.ray_engine import RayEngine

    return RayEngine(**{"workers": 2, "cpus_per_worker": 0.5, **kw})


def test_ray_run_equals_the_single_process_run_and_resumes(
    ray_cluster, reference, demo_root, demo_models, skeleton_file, tmp_path, capsys
):
    from stage1_extract.cli import extract

    out = new_cache(tmp_path, skeleton_file)
    status = extract.main(cli_args(out, demo_root, demo_models) + RAY_ARGS + ["--save-images"], standalone_mode=False)
    report = capsys.readouterr().out
    final = out / "demo" / "features" / reference.output.name
    assert status == 1 and "(0 done before, 6 now" in report and "3 samples failed" in report
    assert_same_features(final, reference.output)
    images = sorted(p.name for p in (final.parent / f"{final.stem}.images").glob("*.jpg"))
    assert images == sorted(p.name for p in (reference.output.parent / f"{final.stem}.images").glob("*.jpg"))
    assert not (final.parent / f"{final.stem}.parts").exists()

    status = extract.main(cli_args(out, demo_root, demo_models) + RAY_ARGS, standalone_mode=False)
    assert status == 1 and "(6 done before, 0 now)" in capsys.readouterr().out  # finished: nothing to do


def busy_workers() -> list[int]:
    """PIDs of model workers answering a batch now (Ray titles a busy actor `<class>.submit`)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if title.startswith(WORKER_TITLE + b".submit"):
            found.append(int(pid))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers in /proc")
def test_a_killed_worker_is_restarted_and_no_sample_is_lost_or_written_twice(
    ray_cluster, reference, demo_root, demo_models, skeleton_file, tmp_path
):
    from stage1_extract.extract import extract_features

    out = new_cache(tmp_path, skeleton_file)
    done: dict = {}
    run = threading.Thread(
        target=lambda: done.update(summary=extract_features(config(out, demo_root, demo_models), engine=ray_engine()))
    )
    run.start()
    deadline, victims = time.monotonic() + 120, []
    while not victims and run.is_alive():
        assert time.monotonic() < deadline, "no worker started a batch in time"
        victims = busy_workers()
        time.sleep(0.01)
    assert victims, "the run ended before a worker was seen answering a batch"
    os.kill(victims[0], signal.SIGKILL)  # mid-batch: Ray restarts the actor and retries its batch
    run.join(timeout=240)
    assert not run.is_alive() and "summary" in done
    summary = done["summary"]
    assert summary.processed == 6 and summary.exit_code == 1
    assert_same_features(summary.output, reference.output)  # every row once, the same numbers


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "?"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="lists the run's processes in /proc")
def test_a_killed_run_leaves_no_ray_process(demo_root, demo_models, skeleton_file, tmp_path):
    pytest.importorskip("ray", reason="the optional extra mmcl-action[ray] is not installed")
    out = new_cache(tmp_path, skeleton_file)
    run = subprocess.Popen(
        cli_command(out, demo_root, demo_models, *RAY_ARGS),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=CLI_ENV,
    )
    ray_processes: list[int] = []
    try:
        deadline = time.monotonic() + 180
        # Once a model worker runs, the whole session is up: GCS, raylet, both agents, workers.
        while not any(title(p).encode().startswith(WORKER_TITLE) for p in ray_processes):
            assert run.poll() is None, "the run ended before its model workers started"
            assert time.monotonic() < deadline, "no model worker started in time"
            time.sleep(0.05)
            ray_processes = children(run.pid)
        run.send_signal(signal.SIGKILL)
        run.wait()
        left = wait_gone(ray_processes, KILL_DEADLINE_S)
        assert left == [], f"Ray processes outlived the killed run: {[title(p) for p in left]}"
    finally:
        run.kill()
        kill_all(ray_processes)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper reads /proc")
def test_a_joined_cluster_gets_no_reaper(ray_cluster):
    """A run that joins a cluster it did not start (here: this test process's) never reaps it."""
    session = ray_cluster._private.worker._global_node.get_session_dir_path()
    probe = "import sys; from stage1_extract.ray_reaper import RayReaper; print(RayReaper.if_started_here(sys.argv[1]))"
    joined = subprocess.run([sys.executable, "-c", probe, session], capture_output=True, text=True, check=True)
    assert joined.stdout.strip() == "None"
    from stage1_extract.ray_reaper import RayReaper

    reaper = RayReaper.if_started_here(session)  # this process started it: reaped when closed
    assert reaper is not None
    reaper._process.kill()  # not closed: the fixture's cluster serves the other tests
    reaper._process.wait()


def test_without_ray_the_engine_says_how_to_install_it(demo_root, demo_models, tmp_path, monkeypatch):
    from stage1_extract.cli import extract

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MMCLError, match=r"^--engine ray needs Ray.*pip install 'mmcl-action\[ray\]'$"):
        extract.main(cli_args(tmp_path / "cache", demo_root, demo_models) + ["--engine", "ray"], standalone_mode=False)
    assert not (tmp_path / "cache").exists()  # said before any work


def test_workers_that_do_not_fit_the_cluster_fail_at_once(ray_cluster, demo_root, demo_models, skeleton_file, tmp_path):
    from stage1_extract.extract import extract_features

    out = new_cache(tmp_path, skeleton_file)
    with pytest.raises(MMCLError, match=r"has 2 CPUs; 2 workers x 1 CPUs plus a decoding task of 1 need 3"):
        extract_features(config(out, demo_root, demo_models), engine=ray_engine(cpus_per_worker=1.0))
    with pytest.raises(MMCLError, match=r"has 0 GPUs; 2 workers x 1 GPUs do not fit"):
        extract_features(config(out, demo_root, demo_models), engine=ray_engine(gpus_per_worker=1.0))
