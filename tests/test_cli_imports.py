"""`mmcl --help` and `mmcl-train --help` answer without importing torch (issue #8): the help of a
command is read on machines where starting torch takes seconds."""

from __future__ import annotations

import subprocess
import sys

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


@pytest.mark.parametrize("module, argv", [
    ("mmcl.cli", ["mmcl", "--help"]),
    ("mmcl.cli", ["mmcl", "train", "--help"]),
    ("mmcl.cli", ["mmcl", "test", "--help"]),
    ("mmcl.cli", ["mmcl", "ablate", "--help"]),
    ("stage2_train.cli", ["mmcl-train", "--help"]),
])
def test_help_imports_no_torch(module, argv):
    out = subprocess.run([sys.executable, "-c", PROBE, module, *argv], capture_output=True, text=True,
                         check=True).stdout
    assert "Usage:" in out
    assert out.strip().splitlines()[-1] == "False"
