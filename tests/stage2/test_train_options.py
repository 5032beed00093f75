"""`mmcl train`'s options stay the ones users' commands and scripts use (issue #22: a renovation of how
settings are declared must not rename or drop a flag). A new option adds its line to the list."""

from __future__ import annotations

from pathlib import Path

from stage2_train import cli

OPTIONS = Path(__file__).parent / "data" / "train-options.txt"  # one option a line: its flag names


def test_train_lists_the_same_options():
    now = [" ".join((*p.opts, *p.secondary_opts)) for p in cli.train.params]
    before = OPTIONS.read_text().splitlines()
    assert [o for o in before if o not in now] == [], "an option users rely on was renamed or removed"
    assert now == before, f"a new or moved option: record it in {OPTIONS.name}"
