"""bench/bench_gpu.py, which only a lent GPU runs in full, stays runnable: its CPU dry run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration  # a whole benchmark run (about a minute here)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_gpu.py"


def test_gpu_bench_dry_run():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(BENCH), "--dry-run", "--no-compile"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(line.strip().startswith("bf16 + channels-last") for line in lines)
    assert any("end to end" in line for line in lines)
    assert lines[-1].startswith("RESULT gpu-train samples/s ")
