"""Stage 1 under faults, on the demo dataset with the demo models: a SIGKILLed extraction leaves no
worker process and no stale file, and its rerun gives the uninterrupted run's cache."""

import signal
import subprocess
import sys
import time

import pytest
from processes import children, kill_all, wait_gone
from stage1_demo import CLI_ENV, assert_same_features, cli_args, cli_command, new_cache

KILL_DEADLINE_S = 10


@pytest.mark.skipif(sys.platform != "linux", reason="lists child processes from /proc")
def test_killed_extraction_leaves_no_worker_and_its_rerun_completes(reference, demo_root, demo_models,
                                                                    skeleton_file, tmp_path, capsys):
    from stage1_extract.cli import extract

    out = new_cache(tmp_path, skeleton_file)
    features = out / "demo" / "features"
    images = features / (reference.output.stem + ".images")
    run = subprocess.Popen(cli_command(out, demo_root, demo_models, "--save-images"), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, env=CLI_ENV)
    deadline = time.monotonic() + 300
    # The worker saves each temporary image before handing its batch over: killed now, the main
    # process leaves a decoded batch in the worker's queue that nobody will read.
    while not list(images.glob("*.jpg")):
        assert run.poll() is None, "the run ended before decoding a sample"
        assert time.monotonic() < deadline, "nothing decoded in time"
        time.sleep(0.005)
    workers = children(run.pid)  # the decoding worker and multiprocessing's resource tracker
    run.send_signal(signal.SIGKILL)
    run.wait()
    try:
        assert workers and wait_gone(workers, KILL_DEADLINE_S) == [], "workers outlived the killed run"
    finally:
        kill_all(workers)
    assert (features / (reference.output.name + ".lock")).exists()  # left by the killed run

    # the same command again (in this process, to save a start-up; one torch thread, as conftest sets)
    status = extract.main(cli_args(out, demo_root, demo_models) + ["--save-images"], standalone_mode=False)
    assert status == 1 and "3 samples failed" in capsys.readouterr().out
    assert_same_features(features / reference.output.name, reference.output)
    left = [p.name for p in out.rglob("*") if p.name.endswith(".lock") or ".tmp-" in p.name]
    assert left == [], "the rerun removes the killed run's lock and temporary files"
