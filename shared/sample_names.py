"""Sample names are data (a manifest's rows, a pyskl `frame_dir`, an npz names file) and end up in
file names (`--save-images` writes `<name>.jpg`), so a name must be one plain path component.
"""

from __future__ import annotations

from pathlib import Path

from .errors import MMCLError

SEPARATORS = ("/", "\\")


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a sample name, or None when it can."""
    if not name:
        return "it is empty"
    if any(sep in name for sep in SEPARATORS):
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains a control character"
    return None


def check_sample_name(name: str, where: str) -> str:
    """`name`, or one `MMCLError` saying where it came from and why it cannot name a sample."""
    problem = name_problem(name)
    if problem is not None:
        raise MMCLError(
            f"{where}: sample name {name!r} is refused: {problem} (a name must be one plain file-name component)"
        )
    return name


def file_inside(folder: Path, file_name: str) -> Path:
    """`folder / file_name`, refused unless it stays directly inside `folder` (defence in depth:
    names are checked where they enter, this guards every path built from one)."""
    path = folder / file_name
    if path.resolve().parent != folder.resolve():
        raise MMCLError(f"{path}: refusing to write outside {folder}")
    return path
