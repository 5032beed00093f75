"""Reading a user's text file (config, manifest, sample table, name list): UTF-8 (a byte-order mark
allowed) or one line naming the file, where decoding failed and the encoding expected; never a
UnicodeDecodeError traceback (a latin-1 or UTF-16 file was one)."""

from __future__ import annotations

from pathlib import Path

from .errors import MMCLError


class TextFileError(MMCLError):
    """A text file that is not UTF-8."""


def read_text(path: str | Path, what: str) -> str:
    """The text of `path` (`what`: the kind of file, for the message). OSError is left to the caller."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise TextFileError(
            f"{path}, line {line}: not UTF-8 text{hint} (byte {data[e.start : e.start + 1]!r} at "
            f"offset {e.start}); save the {what} as UTF-8"
        ) from None
