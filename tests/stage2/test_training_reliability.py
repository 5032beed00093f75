"""Stage 2 never ends in a traceback or a silent wrong result: bad settings name the file, key and
value; a diverging run stops before saving a NaN model; a kill right after a checkpoint keeps the
epoch's metrics row; two runs never share a work dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stage2_run import COMMON, ONE_EPOCH, SKELETON_ONLY, train

from shared.errors import LockedError, MMCLError
from stage2_train.training import checkpoint as checkpoint_module
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.training.config import load_config_file, resolve_config


@pytest.fixture(scope="module")
def cache(skeleton_cache) -> Path:
    """The shared tiny cache without a feature set."""
    return skeleton_cache


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "text, message",
    [
        ('epochs: "ten"', "epochs = 'ten': expected an integer"),
        ('lr: "x"', "lr = 'x': expected a finite number"),
        ("steps: 5", "steps = 5: expected a list of integers"),
        ("crop: x", "crop = 'x': expected a list of 2 finite numbers"),
        ("batch_size: [1]", "batch_size = [1]: expected an integer"),
        ("epochs: 2.5", "epochs = 2.5: expected an integer"),
        ('nesterov: "false"', "nesterov = 'false': expected true or false"),
        ("lr: .nan", "lr = nan: expected a finite number"),
        ("tau: 0", "tau = 0: expected > 0"),
        ("base_channel: 6", "base_channel = 6: expected a positive multiple of 4"),
        ("optim: {warmup: -1}", "warmup = -1: expected in [0, 100000]"),
    ],
)
def test_wrong_values_in_a_config_file_name_the_file_key_and_value(tmp_path, text, message):
    f = tmp_path / "bad.yaml"
    f.write_text(text + "\n")
    with pytest.raises(MMCLError) as e:
        load_config_file(f)
    assert str(e.value).startswith(f"{f}: {message}")


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("lr", -0.1, "--lr = -0.1: expected >= 0"),
        ("workers", -1, "--workers = -1: expected in [0, 1024]"),
        ("seed", -1, "--seed = -1: expected in [0, 2**32)"),
        ("test_batch_size", -4, "--test-batch-size = -4: expected in [1, 1000000]"),
    ],
)
def test_out_of_range_flags_are_one_clear_line(cache, tmp_path, flag, value, message):
    with pytest.raises(
        MMCLError,
        match="command line: "
        + message.replace("[", r"\[").replace("*", r"\*").replace("(", r"\(").replace(")", r"\)"),
    ):
        resolve_config("demo", {}, {flag: value})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stage2_train.cli",
            "--cache",
            str(cache),
            "--work-dir",
            str(tmp_path / "w"),
            f"--{flag.replace('_', '-')}",
            str(value),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr and not (tmp_path / "w").exists()


# --------------------------------------------------------------------------- divergence


def test_a_diverging_run_stops_before_saving_a_nan_model(cache, tmp_path):
    work = tmp_path / "nan"
    with pytest.raises(
        MMCLError,
        match="training diverged in epoch 1: loss .*nothing of epoch 1 is saved "
        r"\(no checkpoint was written yet\)",
    ):
        train(cache, work, *ONE_EPOCH, *SKELETON_ONLY, "--lr", "1e30")
    assert not (work / "last.pt").exists() and not (work / "eval").exists()
    assert not (work / "metrics.jsonl").read_text().strip()  # no row for the diverged epoch


# --------------------------------------------------------------------------- metrics and checkpoint


@pytest.mark.integration
def test_a_kill_right_after_the_checkpoint_keeps_the_epochs_metrics_row(cache, tmp_path, monkeypatch):
    """The kill point the old order lost a row at: epoch 2's last.pt in place, nothing after it."""
    work = tmp_path / "kill"
    flags = (*SKELETON_ONLY, "--epochs", "2", "--warmup", "0", "--window", "12", "--workers", "0")
    save = checkpoint_module.Checkpoint.save

    def save_then_die(self, path):
        save(self, path)
        if Path(path).name == "last.pt" and self.epoch == 2:
            raise SystemExit("killed")

    monkeypatch.setattr(checkpoint_module.Checkpoint, "save", save_then_die)
    with pytest.raises(SystemExit):
        train(cache, work, *flags)
    monkeypatch.undo()
    assert load_checkpoint(work / "last.pt").epoch == 2
    train(cache, work, *flags, "--resume")
    rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_resume_with_fewer_epochs_than_trained_is_refused(cache, tmp_path):
    """#21 item 8: `--resume --epochs 1` on an epoch-2 run reported epoch 1 for epoch-2 weights and
    rewrote config.yaml; now refused, the work dir untouched."""
    work = tmp_path / "done"
    flags = (*SKELETON_ONLY, "--warmup", "0", "--window", "12", "--workers", "0")
    train(cache, work, *flags, "--epochs", "2")
    before = {p.name: p.read_bytes() for p in (work / "config.yaml", work / "metrics.jsonl", work / "last.pt")}
    with pytest.raises(
        MMCLError,
        match=r"--resume: .*last.pt has trained 2 epochs, more than --epochs 1; "
        r"pass --epochs 2 or more",
    ):
        train(cache, work, *flags, "--epochs", "1", "--resume")
    assert {p.name: p.read_bytes() for p in (work / "config.yaml", work / "metrics.jsonl", work / "last.pt")} == before


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_temporary_checkpoints_of_killed_runs_are_removed(cache, tmp_path):
    """#21 item 11: checkpoints/.epoch-00N.pt.tmp-<pid> of a killed training stayed."""
    work = tmp_path / "tmp"
    pid = dead_pid()
    leftovers = [work / "checkpoints" / f".epoch-001.pt.tmp-{pid}", work / f".last.pt.tmp-{pid}"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a checkpoint")
    live = work / "checkpoints" / f".epoch-002.pt.tmp-{os.getpid()}"  # a live writer's file is kept
    live.write_bytes(b"being written")
    train(cache, work, *ONE_EPOCH, *SKELETON_ONLY)
    assert not any(p.exists() for p in leftovers) and live.exists()


def test_a_truncated_last_metrics_row_is_dropped_on_resume(cache, tmp_path):
    """#21 item 9: a metrics.jsonl whose last line a kill cut short was a JSONDecodeError on --resume."""
    work = tmp_path / "cut"
    flags = (*SKELETON_ONLY, "--warmup", "0", "--window", "12", "--workers", "0")
    train(cache, work, *flags, "--epochs", "1")
    with open(work / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 2, "loss": 1.2')  # the kill came while epoch 2's row was written
    train(cache, work, *flags, "--epochs", "2", "--resume")
    rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    (work / "metrics.jsonl").write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(MMCLError, match=r"metrics.jsonl, line 2: not a JSON object"):
        train(cache, work, *flags, "--epochs", "3", "--resume")


# Integration tier (#22 item 6): a whole training run in a fresh interpreter (torch imported again), the default
# tier's slowest test in every measurement (10.6 s at a load average of 2, 90 s at 6-8), like stage 1's full-disk
# test of the feature write.
@pytest.mark.integration
def test_a_full_disk_under_training_is_one_line_with_nothing_half_written(cache, tmp_path):
    """#21 item 9: a full disk under `mmcl train` was 'RuntimeError: enforce fail' (torch's writer),
    and a run stopped between epoch-001.pt and last.pt was 'no checkpoint' on --resume."""
    import resource
    import signal

    def limit() -> None:  # no file may grow past 200 kB: as a full disk, without root
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    work = tmp_path / "full"
    flags = [*COMMON, *ONE_EPOCH, *SKELETON_ONLY]
    done = subprocess.run(
        [sys.executable, "-m", "stage2_train.cli", "--cache", str(cache), "--work-dir", str(work), *flags],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "cannot write" in errors[0] and ".pt: File too large" in errors[0], done.stderr
    assert not [p for p in work.rglob("*") if ".tmp-" in p.name]  # nothing half-written stays


def test_resume_continues_from_the_newest_epoch_checkpoint_when_last_pt_is_missing(cache, tmp_path):
    work = tmp_path / "between"
    train(cache, work, *ONE_EPOCH, *SKELETON_ONLY)
    (work / "last.pt").unlink()  # as if the disk filled between checkpoints/epoch-001.pt and last.pt
    train(cache, work, *SKELETON_ONLY, "--warmup", "0", "--window", "12", "--workers", "0", "--epochs", "2", "--resume")
    assert load_checkpoint(work / "last.pt").epoch == 2


# --------------------------------------------------------------------------- one run per work dir


def test_a_second_run_in_the_same_work_dir_is_refused(cache, tmp_path):
    work = tmp_path / "busy"
    args = [
        sys.executable,
        "-m",
        "stage2_train.cli",
        "--cache",
        str(cache),
        "--work-dir",
        str(work),
        *COMMON,
        *SKELETON_ONLY,
        "--epochs",
        "200",
        "--window",
        "12",
        "--workers",
        "0",
    ]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (work / "config.yaml").exists():  # written once the run holds the lock
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        with pytest.raises(LockedError, match=f"{work} is in use by another `mmcl train` .*pid {first.pid}"):
            train(cache, work, *ONE_EPOCH, *SKELETON_ONLY)
    finally:
        first.kill()
        first.wait(timeout=30)
