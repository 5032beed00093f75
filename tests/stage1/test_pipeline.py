"""Stage 1's models and writer side by side (stage1_extract/pipeline.py, issue #23 item 3): the
overlapped run writes the serial run's cache, shards included; a failed write stops the run,
keeps the finished chunks and resumes; a SIGKILLed overlapped run leaves no worker and its rerun
equals an uninterrupted run; no thread outlives a run."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest
from processes import children, kill_all, wait_for_files, wait_gone
from stage1_demo import CLI_ENV, assert_same_features, cli_args, cli_command, config, new_cache

import stage1_extract.extract as extract_module
from shared.errors import MMCLError
from stage1_extract.extract import extract_features
from stage1_extract.shards import Shard, merge_shards

KILL_DEADLINE_S = 10


def pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mmcl-")]


@pytest.fixture
def thread_names(models, monkeypatch):
    """The names of the threads each model ran on, during one test."""
    seen: dict[str, set[str]] = {"rgb": set(), "mllm": set(), "text": set()}

    def spy(role: str, obj, method: str) -> None:
        original = getattr(obj, method)

        def recorded(*args, **kwargs):
            seen[role].add(threading.current_thread().name.split("_")[0])
            return original(*args, **kwargs)

        monkeypatch.setattr(obj, method, recorded)

    spy("rgb", models.rgb, "encode")
    spy("mllm", models.mllm, "answer")
    spy("text", models.text, "encode")
    return seen


def test_the_overlapped_run_writes_the_serial_runs_cache(
    reference, demo_root, demo_models, models, skeleton_file, tmp_path, thread_names
):
    out = new_cache(tmp_path, skeleton_file)
    summary = extract_features(config(out, demo_root, demo_models, overlap=True), models)
    assert thread_names["rgb"] == {"mmcl-rgb"} and thread_names["mllm"] == {"MainThread"}
    assert thread_names["text"] == {"mmcl-text", "MainThread"}  # the descriptions; the class names (header)
    assert summary.output.name == reference.output.name and summary.exit_code == 1
    assert_same_features(summary.output, reference.output)
    assert pipeline_threads() == [], "the pipeline's threads end with the run"
    assert summary.times.rgb > 0 and summary.times.text > 0 and summary.times.write > 0


def test_the_serial_default_on_the_cpu(demo_root, demo_models, models, skeleton_file, tmp_path, thread_names):
    """On the CPU the models stay on this thread (two cores gain nothing from threads), the writer
    has its own."""
    out = new_cache(tmp_path, skeleton_file)
    extract_features(config(out, demo_root, demo_models, limit=2), models)
    assert thread_names == {"rgb": {"MainThread"}, "mllm": {"MainThread"}, "text": {"MainThread"}}


def test_overlapped_shards_merge_into_the_unsharded_cache(
    reference, demo_root, demo_models, models, skeleton_file, tmp_path
):
    out = new_cache(tmp_path, skeleton_file)
    for index in range(2):
        extract_features(config(out, demo_root, demo_models, shard=Shard(index, 2), overlap=True), models)
    merged = merge_shards(out / "demo", reference.output.stem)
    assert_same_features(merged.output, reference.output)


@pytest.mark.parametrize("overlap", [False, True])
def test_a_failed_write_stops_the_run_keeping_the_finished_chunks(
    reference, demo_root, demo_models, models, skeleton_file, tmp_path, monkeypatch, overlap
):
    out = new_cache(tmp_path, skeleton_file)
    parts = out / "demo" / "features" / (reference.output.stem + ".parts")
    commit, written = extract_module.commit_chunk, []

    def second_write_fails(paths, header, blocks, stamps):
        if written:
            raise MMCLError("cannot write: disk full (simulated)")
        written.append(commit(paths, header, blocks, stamps))

    monkeypatch.setattr(extract_module, "commit_chunk", second_write_fails)
    with pytest.raises(MMCLError, match="disk full"):
        extract_features(config(out, demo_root, demo_models, overlap=overlap), models)
    assert [p.name for p in parts.glob("part-*.h5")] == ["part-0000000.h5"]
    assert pipeline_threads() == []
    monkeypatch.setattr(extract_module, "commit_chunk", commit)
    rerun = extract_features(config(out, demo_root, demo_models, overlap=overlap), models)
    assert rerun.skipped == 2
    assert_same_features(rerun.output, reference.output)


@pytest.mark.integration
@pytest.mark.skipif(sys.platform != "linux", reason="lists child processes from /proc")
def test_a_killed_overlapped_run_leaves_no_worker_and_reruns_to_the_same_cache(
    reference, demo_root, demo_models, skeleton_file, tmp_path, capsys
):
    """Killed mid-pipeline: a chunk committed, batches in the lanes and the decoder's queue."""
    from stage1_extract.cli import extract

    out = new_cache(tmp_path, skeleton_file)
    features = out / "demo" / "features"
    parts = features / (reference.output.stem + ".parts")
    run = subprocess.Popen(
        cli_command(out, demo_root, demo_models, "--overlap"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=CLI_ENV,
    )
    wait_for_files(run, parts, "part-*.h5", "its first chunk was committed")
    workers = children(run.pid)  # the decoding worker and multiprocessing's resource tracker
    run.send_signal(signal.SIGKILL)
    run.wait()
    try:
        assert workers and wait_gone(workers, KILL_DEADLINE_S) == [], "workers outlived the killed run"
    finally:
        kill_all(workers)
    assert not (features / reference.output.name).exists() and list(parts.glob("part-*.h5"))

    # the same command again (in this process, to save a start-up; one torch thread, as conftest sets)
    status = extract.main(cli_args(out, demo_root, demo_models) + ["--overlap"], standalone_mode=False)
    assert status == 1 and "3 samples failed" in capsys.readouterr().out
    assert_same_features(features / reference.output.name, reference.output)
    assert not parts.exists() and pipeline_threads() == []
    left = [p.name for p in out.rglob("*") if p.name.endswith(".lock") or ".tmp-" in p.name]
    assert left == [], "the rerun removes the killed run's lock and temporary files"
