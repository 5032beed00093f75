"""The tree passes ruff (pyproject.toml's [tool.ruff]: pycodestyle, pyflakes, lines of 120) and is laid
out by `ruff format`, so a contributor's lint and format runs show only what their change did (issue #22).
ruff comes with the test extra, pinned to a minor release (the formatter's style may change between them)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from ruff.__main__ import find_ruff_bin

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_the_tree_passes_ruff(command):
    result = subprocess.run(
        [find_ruff_bin(), *command, "--no-cache", str(ROOT)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
