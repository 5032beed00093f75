"""Input identity in the resume key: per sample, a stamp of the video it was extracted from (its
resolved path, so the dataset root is in it, its size and modification time; a frame folder: of
every file in it). A finished row whose stamp differs from its input's stamp now (a manifest
pointing the sample at another video, a rerun with another --root, an edited video) is extracted
again; rows with an empty stamp come from files written before stamps existed and are kept."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from shared.registry import DatasetSpec

from .video import video_path

UNKNOWN = ""  # a row written before stamps existed


def stamp(path: Path) -> str:
    """A short digest of `path`'s identity: resolved path, size and mtime (a folder: of each entry)."""
    path = Path(path)
    h = hashlib.sha256(str(path.resolve()).encode())
    try:
        if path.is_dir():
            with os.scandir(path) as entries:
                for entry in sorted(entries, key=lambda e: e.name):
                    st = entry.stat()
                    h.update(f"|{entry.name}|{st.st_size}|{st.st_mtime_ns}".encode())
        else:
            st = path.stat()
            h.update(f"|{st.st_size}|{st.st_mtime_ns}".encode())
    except OSError:
        h.update(b"|missing")
    return h.hexdigest()[:32]


class InputStamps:
    """Stamps of the rows a run covers, computed once when the run starts."""

    def __init__(self, spec: DatasetSpec, video_dir: Path, names: list[str], rows: np.ndarray) -> None:
        self._by_row = {int(r): stamp(video_path(spec, video_dir, names[int(r)])) for r in rows}

    def of(self, rows) -> list[str]:
        return [self._by_row[int(r)] for r in rows]

    def stale(self, rows, stored: list[str]) -> set[int]:
        """Rows (among those this run covers) whose stored stamp is known and differs from now."""
        return {int(r) for r, s in zip(rows, stored)
                if int(r) in self._by_row and s != UNKNOWN and s != self._by_row[int(r)]}
