"""Progress bars in a log file: one readable line per update, no carriage-return redraws."""

import io

from shared import progress as progress_module
from shared.progress import progress_bar


def test_a_bar_writing_to_a_file_prints_lines(monkeypatch):
    monkeypatch.setattr(progress_module, "LOG_INTERVAL", 0.0)  # every update, for the test
    log = io.StringIO()  # not a terminal
    for _ in progress_bar(range(5), desc="work", file=log, mininterval=0, maxinterval=0, leave=False):
        pass
    text = log.getvalue()
    assert "\r" not in text and text.strip()
    lines = text.splitlines()
    assert all(line.startswith("work:") for line in lines) and "5/5" in lines[-1]
