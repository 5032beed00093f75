"""The configs to start from (issue #25 item 7): configs/<dataset>/<recipe>.yaml, loaded by
--config, resolve to exactly the settings the recipe flags give, so editing a copy is the only
difference a user makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from stage2_train.training.config import load_config_file, resolve_config
from stage2_train.training.recipes import RECIPES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FILES = sorted(p for p in CONFIGS.glob("*/*.yaml"))


def test_the_shipped_datasets_and_recipes_have_a_file():
    shipped = {(p.parent.name, p.stem) for p in FILES}
    assert {(d, r) for d in ("ntu60", "ntu120", "nw-ucla") for r in ("mmcl", "ctrgcn")} | {("demo", "demo")} <= shipped
    assert {(d, r) for d in ("ntu60", "ntu120") for r in ("hdgcn", "stgcnpp", "protogcn")} <= shipped
    assert all(recipe in RECIPES for _, recipe in shipped)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_config_file_resolves_as_its_recipe_flags(path):
    dataset, recipe = path.parent.name, path.stem
    flags = {"recipe": recipe}
    if recipe == "ctrgcn":  # the baseline: --no-fam --no-frm
        flags |= {"use_fam": False, "use_frm": False}
    if recipe in ("hdgcn", "stgcnpp", "protogcn"):  # the backbone's own baseline
        flags |= {"use_fam": False, "use_frm": False, "backbone": recipe}
    from_file = resolve_config(dataset, load_config_file(path), {})
    from_flags = resolve_config(dataset, {}, flags)
    assert from_file.to_dict() == from_flags.to_dict()
    other = resolve_config(dataset, {}, {"recipe": "demo" if recipe != "demo" else "mmcl"})
    assert from_file.to_dict() != other.to_dict()
