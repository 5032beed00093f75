"""Bounded numeric flags for every command: `FiniteFloat` refuses NaN and infinities, which click's
FloatRange lets through (every comparison with NaN is false, so `--crop-margin nan` passed a
[0, 2] range and made all-black temporal images); `Count` is an integer range with an upper bound
and the reason for it, so a size that cannot fit is refused before it reaches an allocation."""

from __future__ import annotations

import math

import click


class FiniteFloat(click.FloatRange):
    """A finite float, optionally within [min, max] (click.FloatRange's arguments)."""

    name = "finite float"

    def _describe_range(self) -> str:
        # click describes a range without bounds as "x<=None"; the type's name already says finite
        return "" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


class Count(click.IntRange):
    """An integer in [min, max]; `why` says what the upper bound protects (shown when it is exceeded)."""

    name = "count"

    def __init__(self, min: int = 0, max: int | None = None, why: str = "") -> None:
        super().__init__(min, max)
        self.why = why

    def convert(self, value, param, ctx):
        number = click.INT.convert(value, param, ctx)
        if number < self.min or (self.max is not None and number > self.max):
            upper = f" and at most {self.max}" if self.max is not None else ""
            reason = f" ({self.why})" if self.why and self.max is not None and number > self.max else ""
            self.fail(f"{value!r} is out of range: expected at least {self.min}{upper}{reason}", param, ctx)
        return number
