"""Settings declared once, on their config field: `setting(default, help=..., flag=..., check=...)`
puts the default, the bound, the help text, the flag and the flat key in the field's metadata; the
config-file keys, config.yaml, `mmcl train`'s options (`click_options`), the checks of a value
from a file or flag (`checked`) and of a config built directly (`check_fields`) are read from there.

A config file, a flag or a saved config that gives `epochs: "ten"`, `lr: -0.1`, `steps: 5` or
`nesterov: "false"` fails with one line naming where the value came from, the key, the value and
what is expected; YAML's strings are never read as numbers or booleans.

Adding a setting: one field, `name: int = setting(3, help="...", flag=True, check=AT_LEAST_ONE)`,
plus the code that uses it.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, Field
from typing import Any, Union, get_args, get_origin

from shared.errors import MMCLError

Check = tuple[Callable[[Any], bool], str]  # (holds, what it asks, for the message)
CHECK = "check"
SPEC = "setting"  # the metadata key of a `setting()`'s SettingSpec


def bound(holds: Callable[[Any], bool], asks: str) -> dict[str, Check]:
    """Field metadata: the value (when not None) must satisfy `holds`."""
    return {CHECK: (holds, asks)}


NON_NEGATIVE = bound(lambda v: v >= 0, ">= 0")
POSITIVE = bound(lambda v: v > 0, "> 0")
AT_LEAST_ONE = bound(lambda v: v >= 1, ">= 1")
FRACTION = bound(lambda v: 0 <= v < 1, "in [0, 1)")


def between(low: int, high: int, why: str) -> dict[str, Check]:
    """Field metadata: low <= value <= high; `why` says what the upper bound protects (a size past
    it cannot fit, or a run that long is a typo), shown in the message."""
    return bound(lambda v: low <= v <= high, f"in [{low}, {high}] ({why})")


def one_of(choices: Iterable[str], why: str = "") -> dict[str, Check]:
    """Field metadata: the value is one of `choices` (listed in the message, with `why`)."""
    choices = tuple(choices)
    return bound(lambda v: v in choices, f"one of {', '.join(choices)}" + (f" ({why})" if why else ""))


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """What a field's metadata says beyond its default and bound. `flag`: its `mmcl train` option
    (None: a config-file key only). `help`: the option's help; "{default}" in it is the field's
    default. `key`: its flat key where it differs from the field's name. `choices`: the values the
    option offers. `path`: "any" or "file" (an existing file) for an option naming a path.
    `at_least`: a lower bound click checks as it parses the flag. `switch`: the flag takes no value
    and sets the setting to this. `bare`: the value of the option given without one.
    `fixed_on_resume`: a resumed run cannot change it (it shapes the model or its data).
    `recipe`: every recipe decides it (the settings line says "recipe <name>")."""

    help: str | None = None
    flag: str | None = None
    key: str | None = None
    choices: tuple[str, ...] | None = None
    path: str | None = None
    at_least: int | None = None
    switch: bool | None = None
    bare: str | None = None
    fixed_on_resume: bool = False
    recipe: bool = False


def setting(
    default: Any = MISSING,
    *,
    help: str | None = None,
    flag: bool | str = False,
    check: dict[str, Check] | None = None,
    choices: Iterable[str] | None = None,
    why: str = "",
    key: str | None = None,
    path: str | None = None,
    at_least: int | None = None,
    switch: bool | None = None,
    bare: str | None = None,
    fixed_on_resume: bool = False,
    recipe: bool = False,
) -> Any:
    """A dataclass field declaring one setting. `flag=True`: an option named after the flat key
    (`--batch-size`); a string: that name. `check`: a bound (`AT_LEAST_ONE`, `between(...)`);
    `choices` (with `why`, shown when a value is refused) makes one. The rest: `SettingSpec`."""
    choices = tuple(choices) if choices is not None else None
    if choices is not None:
        check = check or one_of(choices, why)
    spec = SettingSpec(
        help=help,
        flag=flag if isinstance(flag, str) else (True if flag else None),
        key=key,
        choices=choices,
        path=path,
        at_least=at_least,
        switch=switch,
        bare=bare,
        fixed_on_resume=fixed_on_resume,
        recipe=recipe,
    )
    return dataclasses.field(default=default, metadata={**(check or {}), SPEC: spec})


class SettingError(MMCLError):
    """A setting whose value has the wrong type or lies out of range."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One flat setting: its key, the section of TrainConfig holding it (None: TrainConfig's own),
    its field and resolved type."""

    key: str
    section: str | None
    field: Field
    type: Any

    @property
    def spec(self) -> SettingSpec:
        return self.field.metadata.get(SPEC, SettingSpec())

    @property
    def flag(self) -> str | None:
        """Its `mmcl train` option, or None."""
        flag = self.spec.flag
        return f"--{self.key.replace('_', '-')}" if flag is True else flag

    @property
    def default(self) -> Any:
        return self.field.default

    def check(self, value: Any, source: str, name: str | None = None) -> Any:
        """`value` as this setting holds it, or SettingError naming `source` and `name` (the key)."""
        return checked(value, self.field, self.type, name or self.key, source)


def flat_settings(root: type, sections: dict[str, type]) -> dict[str, Setting]:
    """flat key -> Setting, for the fields of each section class and `root`'s own (the fields of
    `root` named as a section are the sections). Two fields with one flat key raise AssertionError."""
    out: dict[str, Setting] = {}
    for section, kind in [*sections.items(), (None, root)]:
        hints = typing.get_type_hints(kind)
        for f in dataclasses.fields(kind):
            if section is None and f.name in sections:
                continue
            spec = f.metadata.get(SPEC)
            key = (spec.key if spec is not None else None) or f.name
            assert key not in out, f"two settings share the key {key!r}"
            out[key] = Setting(key, section, f, hints[f.name])
    return out


def check_fields(config: Any, where: str = "training config") -> None:
    """Each field's bound on the value `config` holds (a config built in code; files and flags are
    checked earlier by `checked`, naming their source)."""
    for f in dataclasses.fields(config):
        holds, asks = f.metadata.get(CHECK, (None, ""))
        value = getattr(config, f.name)
        if holds is not None and value is not None and not holds(value):
            spec = f.metadata.get(SPEC)
            key = (spec.key if spec is not None else None) or f.name
            raise SettingError(f"{where}: {key} = {value!r}: expected {asks}")


def checked(value: Any, f: Field, hint: Any, key: str, source: str) -> Any:
    """`value` as field `f` (type `hint`) holds it (YAML lists become tuples, ints floats), or
    SettingError naming `source` and `key`."""
    try:
        typed = _as(value, hint)
    except TypeError:
        raise SettingError(f"{source}: {key} = {value!r}: expected {_describe(hint)}") from None
    holds, asks = f.metadata.get(CHECK, (None, ""))
    if typed is not None and holds is not None and not holds(typed):
        raise SettingError(f"{source}: {key} = {value!r}: expected {asks}")
    return typed


def _as(value: Any, hint: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _as(value, option)
            except TypeError:
                pass
        raise TypeError
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise TypeError
        kinds = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(kinds) != len(value):
            raise TypeError
        return tuple(_as(v, k) for v, k in zip(value, kinds))
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        return value  # a type this module does not check
    raise TypeError


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        words = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(words + (["null (the default)"] if type(None) in args else []))
    if origin is tuple:
        if args[-1] is Ellipsis:
            return f"a list of {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s, e.g. [90, 100]"
        return f"a list of {len(args)} {_describe(args[0]).removeprefix('an ').removeprefix('a ')}s"
    return {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


# --------------------------------------------------------------------------- command-line options


def click_options(settings: Iterable[Setting]) -> list:
    """The click options of the settings that have a flag, in the order given. Each option's
    parameter is the flat key and its default None, so only the flags a user gives override the
    other layers (recipe, --init-from, config file)."""
    return [_option(s) for s in settings if s.flag]


def _option(s: Setting):
    import click

    from shared.numeric_options import FiniteFloat

    spec = s.spec
    text = spec.help.replace("{default}", str(s.default)) if spec.help else None
    names = [s.flag, s.key]
    if spec.switch is not None:
        return click.Option(names, is_flag=True, flag_value=spec.switch, default=None, help=text)
    kwargs: dict[str, Any] = {}
    kind = _plain(s.type)
    if spec.choices is not None:
        kwargs["type"] = click.Choice(spec.choices)
    elif spec.path is not None:
        kwargs["type"] = click.Path(exists=True, dir_okay=False) if spec.path == "file" else click.Path()
    elif kind is int:
        kwargs["type"] = int if spec.at_least is None else click.IntRange(min=spec.at_least)
    elif kind is float:
        kwargs["type"] = FiniteFloat()
    elif get_origin(kind) is tuple and get_args(kind)[0] is int:
        kwargs["callback"] = _integers
    elif kind is not str:
        raise TypeError(f"setting {s.key}: no command-line form for {kind} (give it a switch or no flag)")
    if spec.bare is not None:
        kwargs |= dict(is_flag=False, flag_value=spec.bare)
    return click.Option(names, help=text, **kwargs)


def _plain(hint: Any) -> Any:
    """`int | None` -> int."""
    if get_origin(hint) in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        return options[0] if len(options) == 1 else hint
    return hint


def _integers(ctx, param, value: str | None) -> list[int] | None:
    """`--steps 90,100` (or "90 100") -> [90, 100]."""
    if value is None:
        return None
    try:
        return [int(s) for s in value.replace(",", " ").split()]
    except ValueError:
        import click

        raise click.BadParameter(f"{value!r}: expected integers like '90,100'") from None
