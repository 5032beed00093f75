"""Checking a setting's value against its config field: the type its annotation names and the
range its metadata gives (`field(default=..., metadata=AT_LEAST_ONE)`), so that each bound sits
beside the default it bounds.

A config file, a flag or a saved config that gives `epochs: "ten"`, `lr: -0.1`, `steps: 5` or
`nesterov: "false"` fails with one line naming where the value came from, the key, the value and
what is expected; YAML's strings are never read as numbers or booleans.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from dataclasses import Field
from typing import Any, Union, get_args, get_origin

from shared.errors import MMCLError

Check = tuple[Callable[[Any], bool], str]  # (holds, what it asks, for the message)
CHECK = "check"


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


class SettingError(MMCLError):
    """A setting whose value has the wrong type or lies out of range."""


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
        hint, getattr(hint, "__name__", str(hint)))
