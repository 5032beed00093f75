"""Every console script's `--help` answers without importing torch (issues #8, #22): the help of a
command is read on machines where starting torch takes seconds."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PROBE = """
import sys
module, argv = sys.argv[1], sys.argv[2:]
sys.argv = argv
main = __import__(module, fromlist=["main"]).main
try:
    main()
except SystemExit as e:
    assert e.code in (0, None), e.code
print("torch" in sys.modules)
"""


ROOT = Path(__file__).resolve().parents[1]
HELP_CALLS = [
    ("mmcl.cli", ["mmcl", "--help"]),
    ("mmcl.cli", ["mmcl", "extract", "--help"]),
    ("mmcl.cli", ["mmcl", "train", "--help"]),
    ("mmcl.cli", ["mmcl", "test", "--help"]),
    ("mmcl.cli", ["mmcl", "ablate", "--help"]),
    ("stage2_train.cli", ["mmcl-train", "--help"]),
    ("stage1_extract.cli", ["mmcl-extract", "--help"]),
]


def test_every_console_script_is_probed():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    probed = {(module, argv[0]) for module, argv in HELP_CALLS}
    assert {(target.split(":")[0], name) for name, target in scripts.items()} <= probed


@pytest.mark.parametrize("module, argv", HELP_CALLS)
def test_help_imports_no_torch(module, argv):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, module, *argv], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage:" in out
    assert out.strip().splitlines()[-1] == "False"
