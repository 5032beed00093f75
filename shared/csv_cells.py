"""CSV reports safe to open in a spreadsheet: a text cell that starts like a formula (=, +, -, @,
tab, carriage return; a class name "=HYPERLINK(...)" from a user's manifest) is written with a
leading apostrophe, so the spreadsheet shows it as text instead of evaluating it. Numbers,
negative ones included, are written as they are."""

from __future__ import annotations

import csv
from typing import Any, Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS) or _is_number(value):
        return value
    return "'" + value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class SafeWriter:
    """csv.writer whose text cells go through formula_safe."""

    def __init__(self, f) -> None:
        self._w = csv.writer(f)

    def writerow(self, row: Iterable[Any]) -> None:
        self._w.writerow([formula_safe(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
