"""One source per setting (issue #22 item 1): a config field's `setting(...)` metadata makes its
`mmcl train` option, its config-file key and its checks; nothing else declares them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import click
import pytest

from shared.errors import MMCLError
from stage2_train import cli
from stage2_train.data.augment_config import AugmentConfig
from stage2_train.models.loss_config import MMCLLossConfig
from stage2_train.settings import AT_LEAST_ONE, SettingError, check_fields, flat_settings, setting
from stage2_train.training.config import SETTINGS, TrainConfig, load_config_file
from stage2_train.training.optim_config import OptimConfig


def test_every_train_option_is_one_setting_or_a_named_exception():
    params = cli.train.params
    names = [p.name for p in params]
    assert len(names) == len(set(names))
    for p in params:
        if p.name in cli._NOT_SETTINGS:  # written in cli.py (--recipe: a setting whose help lists the recipes)
            assert p.name not in SETTINGS or SETTINGS[p.name].flag is None
        else:
            assert SETTINGS[p.name].flag in p.opts, p.name
    flagged = {k for k, s in SETTINGS.items() if s.flag}
    assert flagged == set(names) - set(cli._NOT_SETTINGS), "a setting with a flag that is no option"
    assert set(cli._NOT_SETTINGS) == {"recipe", "config_file", "resume"}


def test_option_order_names_only_options():
    assert len(cli.OPTION_ORDER) == len(set(cli.OPTION_ORDER))
    assert [p.name for p in cli.train.params] == list(cli.OPTION_ORDER)


@dataclass(frozen=True)
class _Knobs:
    knob: int = setting(3, flag=True, check=AT_LEAST_ONE, help="Turns of the knob ({default}).")
    quiet: bool = setting(False, flag="--hush", switch=True, help="Say less.")
    silent: str = setting("x", key="renamed")  # a config key only: no option

    def __post_init__(self) -> None:
        check_fields(self, "knobs")


@dataclass(frozen=True)
class _Root:
    knobs: _Knobs = dataclasses.field(default_factory=_Knobs)
    rate: float = setting(0.5, flag=True, help="A rate.")


def test_a_field_with_a_flag_makes_an_option_at_the_end():
    extra = flat_settings(_Root, {"knobs": _Knobs})
    assert list(extra) == ["knob", "quiet", "renamed", "rate"]
    options = cli.train_options({**SETTINGS, **extra})
    assert [o.opts for o in options[-3:]] == [["--knob"], ["--hush"], ["--rate"]]
    assert options[-3].help == "Turns of the knob (3)."
    assert [o.name for o in options[:-3]] == list(cli.OPTION_ORDER)  # the listed ones keep their places
    command = click.Command("t", params=options[-3:])
    assert command.make_context("t", []).params == {"knob": None, "quiet": None, "rate": None}
    assert command.make_context("t", ["--knob", "5", "--hush", "--rate", "0.25"]).params == {
        "knob": 5,
        "quiet": True,
        "rate": 0.25,
    }


def test_a_new_settings_bound_and_key_are_checked():
    s = flat_settings(_Root, {"knobs": _Knobs})
    with pytest.raises(SettingError, match=r"^f\.yaml: knob = 0: expected >= 1$"):
        s["knob"].check(0, "f.yaml")
    assert s["renamed"].field.name == "silent" and s["renamed"].section == "knobs"
    with pytest.raises(SettingError, match=r"^knobs: knob = 0: expected >= 1$"):
        _Knobs(knob=0)


def test_the_help_shows_the_fields_default():
    by_name = {p.name: p for p in cli.train.params}
    assert f"({MMCLLossConfig.tau})" in by_name["tau"].help
    assert f"(default {TrainConfig.keep_checkpoints};" in by_name["keep_checkpoints"].help
    assert f"({AugmentConfig.window};" in by_name["window"].help


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: OptimConfig(epochs=-1), "training config: epochs = -1: expected in [0, 100000]"),
        (lambda: OptimConfig(batch_size=0), "training config: batch_size = 0: expected in [1, 1000000]"),
        (
            lambda: AugmentConfig(kind="flip"),
            "training config: augment = 'flip': expected one of crop-rotate, ucla-view",
        ),
        (lambda: AugmentConfig(crop=(0.9, 0.5)), "training config: crop = (0.9, 0.5): expected 0 < low <= high <= 1"),
        (lambda: TrainConfig(device="tpu"), "expected one of auto, cpu, cuda (choose a GPU with CUDA_VISIBLE_DEVICES)"),
        (lambda: TrainConfig(keep_checkpoints=-1), "keep_checkpoints = -1: expected >= 0 (0 keeps every epoch)"),
    ],
)
def test_a_config_built_in_code_is_checked_by_its_metadata(make, message):
    with pytest.raises(MMCLError) as e:
        make()
    assert message in str(e.value)


def test_a_config_file_names_the_key_a_choice_refuses(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("augment: {kind: flip}\n")
    with pytest.raises(SettingError, match="c.yaml: augment = 'flip': expected one of crop-rotate, ucla-view"):
        load_config_file(f)
    f.write_text("stream: Joint_Motion\nmixed_precision: bf16\n")
    assert load_config_file(f) == {"stream": "Joint_Motion", "mixed_precision": "bf16"}


@pytest.mark.parametrize(
    "argv, given",
    [
        ([], {}),
        (["--no-fam", "--no-frm"], {"use_fam": False, "use_frm": False}),
        (["--data-on-device", "--compile"], {"on_device": True, "compile": "inductor"}),
        (["--steps", "90,100", "--compile", "eager"], {"steps": [90, 100], "compile": "eager"}),
    ],
)
def test_only_the_flags_given_have_values(argv, given):
    params = cli.train.make_context("mmcl train", argv).params
    assert {k: v for k, v in params.items() if v is not None and k not in ("resume",)} == given


def test_a_bad_steps_flag_is_a_usage_error():
    with pytest.raises(click.BadParameter, match="expected integers like '90,100'"):
        cli.train.make_context("mmcl train", ["--steps", "x"])
