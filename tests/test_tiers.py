"""Tests in two tiers (issue #22): `pytest` runs the default tier a contributor waits for; the
integration tier (kills, Ray, launches, compile, the longer end-to-end runs) is marked `integration`;
the README's test command, `./pipeline.sh --test` (what CI runs), runs both."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Modules holding both tiers and one holding only integration tests: enough to check the selections.
SAMPLE = ("tests/stage2/test_train.py", "tests/stage2/test_launch.py")


def collected(*args: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *SAMPLE, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line for line in out.splitlines() if "::" in line}


def ci_selection() -> str:
    """The marker expression of pipeline.sh's test command."""
    found = re.findall(r"-m pytest -q -m '([^']+)'", (ROOT / "pipeline.sh").read_text())
    assert len(found) == 1, "pipeline.sh --test runs one pytest command with a marker expression"
    return found[0]


def test_ci_runs_both_tiers_and_pytest_the_default_one():
    default, integration, ci = collected(), collected("-m", "integration"), collected("-m", ci_selection())
    assert "tests/stage2/test_launch.py::test_two_machines" in integration
    assert "tests/stage2/test_train.py::test_compile_and_autocast_options_run" in integration
    assert default and not default & integration
    assert ci == default | integration
