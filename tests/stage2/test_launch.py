"""`accelerate launch` as the README documents it: two processes on the CPU, and two "machines"
(two launches with --num_machines 2 on this host) forming one DDP run. accelerate's `--cpu` flag
starts a single process whatever --num_processes says; `--multi_gpu` with `--device cpu` starts
torchrun's workers, which then talk gloo."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent))
TRAIN = [
    "-m",
    "stage2_train.cli",
    "--no-fam",
    "--no-frm",
    "--recipe",
    "demo",
    "--epochs",
    "1",
    "--batch-size",
    "8",
    "--window",
    "12",
    "--workers",
    "0",
    "--device",
    "cpu",
]

pytestmark = [
    pytest.mark.integration,  # multi-process and two-machine launches
    pytest.mark.skipif(ACCELERATE is None, reason="accelerate's launcher is not installed"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cache(skeleton_cache, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("launch")
    (root / "small.yaml").write_text("base_channel: 8\n")
    return skeleton_cache, root / "small.yaml"


def launch(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [ACCELERATE, "launch", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def finished(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def test_two_cpu_processes(cache, tmp_path):
    data, config = cache
    out = finished(
        launch(
            "--multi_gpu",
            "--num_processes",
            "2",
            "--main_process_port",
            str(free_port()),
            *TRAIN,
            "--cache",
            str(data),
            "--config",
            str(config),
            "--work-dir",
            str(tmp_path / "w"),
        )
    )
    assert "; 2 processes" in out
    assert json.loads((tmp_path / "w" / "eval" / "summary.json").read_text())["num_samples"] == 9


def test_two_machines(cache, tmp_path):
    data, config = cache
    port = str(free_port())
    procs = [
        launch(
            "--multi_gpu",
            "--num_machines",
            "2",
            "--machine_rank",
            str(rank),
            "--main_process_ip",
            "127.0.0.1",
            "--main_process_port",
            port,
            "--num_processes",
            "2",
            *TRAIN,
            "--cache",
            str(data),
            "--config",
            str(config),
            "--work-dir",
            str(tmp_path / "w"),
        )
        for rank in (0, 1)
    ]
    outs = [finished(p) for p in procs]
    assert "; 2 processes" in outs[0]
    assert [json.loads(line)["epoch"] for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()] == [1]
