"""Stage 1 under faults, on the demo dataset with the demo models: a SIGKILLed extraction leaves no
worker process and no stale file, and its rerun gives the uninterrupted run's cache; a read-only
--out and a full disk (a file-size limit: writes fail with EFBIG) during the skeleton or the
feature write end in one clear line and exit 2, keeping the finished chunks."""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import children, kill_all, wait_for_files, wait_gone
from stage1_demo import CLI_ENV, assert_same_features, cli_args, cli_command, new_cache

from shared.cache_schema import SKELETON_FILE

KILL_DEADLINE_S = 10


@pytest.mark.integration
@pytest.mark.skipif(sys.platform != "linux", reason="lists child processes from /proc")
def test_killed_extraction_leaves_no_worker_and_its_rerun_completes(
    reference, demo_root, demo_models, skeleton_file, tmp_path, capsys
):
    from stage1_extract.cli import extract

    out = new_cache(tmp_path, skeleton_file)
    features = out / "demo" / "features"
    images = features / (reference.output.stem + ".images")
    run = subprocess.Popen(
        cli_command(out, demo_root, demo_models, "--save-images"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=CLI_ENV,
    )
    # The worker saves each temporary image before handing its batch over: killed now, the main
    # process leaves a decoded batch in the worker's queue that nobody will read.
    wait_for_files(run, images, "*.jpg", "decoding a sample")
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


def file_size_limit(size: int):
    """A subprocess's preexec_fn: no file may grow past `size` bytes (as a full disk, without root)."""

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes then fail with EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The error line of a run that must end with exactly one message and exit 2, no traceback."""
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def skeleton_command(demo_root: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "stage1_extract.cli",
        "--dataset",
        "demo",
        "--root",
        str(demo_root),
        "--out",
        str(out),
        "--skeletons-only",
        "--workers",
        "0",
        "--quiet",
    ]


def test_full_disk_during_the_skeleton_write_is_one_clear_error(demo_root, tmp_path):
    out = tmp_path / "cache"
    done = subprocess.run(
        skeleton_command(demo_root, out),
        capture_output=True,
        text=True,
        env=CLI_ENV,
        preexec_fn=file_size_limit(20_000),
    )  # the demo's skeleton file is about 140 kB
    line = one_error_line(done)  # was: a traceback, then a segmentation fault (exit 139)
    assert f"cannot write {out / 'demo' / SKELETON_FILE}: File too large after" in line and "rerun" in line
    assert [p.name for p in (out / "demo").iterdir()] == []  # no partial file, no lock left


@pytest.mark.integration
def test_full_disk_during_the_feature_write_keeps_the_chunks(
    reference, demo_root, demo_models, skeleton_file, tmp_path, capsys
):
    from stage1_extract.cli import extract

    out = new_cache(tmp_path, skeleton_file)
    features = out / "demo" / "features"
    # the merged feature set is about 49 kB, each committed chunk (2 samples) smaller (without per-frame
    # embeddings: with them, 120 and 56 kB)
    done = subprocess.run(
        cli_command(out, demo_root, demo_models),
        capture_output=True,
        text=True,
        env=CLI_ENV,
        preexec_fn=file_size_limit(42_000),
    )
    line = one_error_line(done)
    assert f"cannot write {features / reference.output.name}: File too large; it needs about" in line
    parts = sorted((features / (reference.output.stem + ".parts")).glob("part-*.h5"))
    assert len(parts) == 3 and not (features / reference.output.name).exists()

    status = extract.main(cli_args(out, demo_root, demo_models), standalone_mode=False)  # room again
    assert status == 1 and "(6 done before, 0 now" in capsys.readouterr().out
    assert_same_features(features / reference.output.name, reference.output)


def test_read_only_out_is_one_clear_error(demo_root, tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:  # root writes through permission bits: a read-only file system instead
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1M", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if mount.returncode != 0:
            pytest.skip(f"running as root and cannot mount a read-only tmpfs: {mount.stderr.strip()}")
        mounted = True
    else:
        folder.chmod(0o555)
    try:
        done = subprocess.run(
            skeleton_command(demo_root, folder / "cache"), capture_output=True, text=True, env=CLI_ENV
        )
    finally:
        if mounted:
            subprocess.run(["umount", str(folder)], check=True)
        else:
            folder.chmod(0o755)
    line = one_error_line(done)  # was: an OSError traceback
    assert f"cannot write {folder / 'cache'}" in line
    assert "Read-only file system" in line or "Permission denied" in line
