"""#21 item 5: every float flag of every command refuses NaN and infinities (click's FloatRange
let `--crop-margin nan` through: all-black temporal images stored as valid features)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import click
import pytest

from mmcl.cli import SUBCOMMANDS
from shared.numeric_options import Count, FiniteFloat


def float_options() -> list[tuple[str, click.Option]]:
    found = []
    for name, (module, attr, _) in SUBCOMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        found += [
            (name, p) for p in command.params if isinstance(p.type, (click.types.FloatParamType, click.FloatRange))
        ]
    return found


def test_every_float_flag_is_a_finite_float():
    options = float_options()
    assert {"extract", "train"} <= {name for name, _ in options}  # the walk finds flags at all
    loose = [f"mmcl {name} {p.opts[0]}" for name, p in options if not isinstance(p.type, FiniteFloat)]
    assert not loose, f"float flags that accept NaN: {loose}"


def test_help_shows_no_empty_range():
    """click describes a FloatRange without bounds as `[x<=None]` in --help; ours shows none."""
    shown = [
        f"mmcl {name} {p.opts[0]}"
        for name, p in float_options()
        if "None" in (p.get_help_extra(click.Context(click.Command(name))).get("range") or "")
    ]
    assert not shown, f"help shows an empty range for {shown}"
    assert FiniteFloat(0, 2)._describe_range() == "0<=x<=2"


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf"])
def test_finite_float_refuses_nan_and_infinities(text):
    with pytest.raises(click.BadParameter, match="is not a finite number"):
        FiniteFloat().convert(text, None, None)
    assert FiniteFloat(0, 2).convert("0.5", None, None) == 0.5


def test_count_names_the_bound_and_its_reason():
    count = Count(1, 64, why="one slot per frame")
    with pytest.raises(click.BadParameter, match=r"expected at least 1 and at most 64 \(one slot per frame\)"):
        count.convert("100000", None, None)
    with pytest.raises(click.BadParameter, match="expected at least 1 and at most 64$"):
        count.convert("0", None, None)
    assert count.convert("64", None, None) == 64


@pytest.mark.parametrize(
    "command",
    [
        ["stage1_extract.cli", "--dataset", "demo", "--crop-margin", "nan"],
        ["stage2_train.cli", "--lr", "nan"],
    ],
)
def test_nan_on_the_command_line_is_one_clear_line(command, tmp_path):
    done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "'nan' is not a finite number" in done.stderr and not any(tmp_path.iterdir())
