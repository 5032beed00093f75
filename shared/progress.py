"""Progress bars that read well in a terminal and in a log file.

On a terminal, `progress_bar` is tqdm as usual. When stderr is not a terminal (a batch job's log, a
pipe), tqdm's carriage-return redraws would pile up on one endless line, so the bar is printed
as a plain line at most every LOG_INTERVAL seconds, plus its final state.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

LOG_INTERVAL = 30.0  # seconds between lines in a log file


class _Lines:
    """A file for tqdm that turns each redraw into one line and drops the blank clears."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """tqdm(iterable, **kwargs), line by line when stderr is not a terminal."""
    stream = kwargs.pop("file", None) or sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        kwargs = {
            "mininterval": LOG_INTERVAL,
            "maxinterval": LOG_INTERVAL,
            "ncols": 100,
            **kwargs,
            "file": _Lines(stream),
            "dynamic_ncols": False,
        }
    else:
        kwargs["file"] = stream
    return tqdm(iterable, **kwargs)
