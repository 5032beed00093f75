"""The tree passes ruff (pyproject.toml's [tool.ruff]: pycodestyle, pyflakes, lines of 120), so a
contributor's lint run shows only what their change did (issue #22). ruff comes with the test extra."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ruff.__main__ import find_ruff_bin

ROOT = Path(__file__).resolve().parents[1]


def test_the_tree_passes_ruff():
    result = subprocess.run([find_ruff_bin(), "check", "--no-cache", str(ROOT)], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
