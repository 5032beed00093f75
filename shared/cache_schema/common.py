"""What every cache file shares: schema version, file names, string dtype, sample-list hash,
header check and the failures table."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import h5py

from ..errors import CacheError
from .digest import read_checked, write_checked

SCHEMA_VERSION = 1
SKELETON_FILE = "skeletons.h5"
FEATURES_DIR = "features"
STR = h5py.string_dtype("utf-8")
META_FIELDS = ("subject", "camera", "setup", "replication")


def names_hash(names) -> str:
    """Identity of a sample list: both files store it, stage 2 refuses a mismatch."""
    h = hashlib.sha256()
    for name in names:
        h.update(str(name).encode())
        h.update(b"\n")
    return h.hexdigest()


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def strings(ds) -> list[str]:
    return decoded(ds[()])


def decoded(values) -> list[str]:
    """A string dataset's values (bytes as h5py reads them) as a list of str."""
    return [s.decode() if isinstance(s, bytes) else str(s) for s in values]


def check_header(f: h5py.File, path: Path, kind: str) -> None:
    version = f.attrs.get("schema_version")
    if f.attrs.get("kind") != kind or version is None:
        raise CacheError(f"{path}: not an mmcl {kind} file (attribute kind/schema_version missing)")
    if int(version) != SCHEMA_VERSION:
        raise CacheError(
            f"{path}: written with cache schema version {int(version)}, this mmcl-action reads "
            f"version {SCHEMA_VERSION}; re-run `mmcl extract` to rebuild it"
        )


def open_cache(path: Path) -> h5py.File:
    if not path.exists():
        raise CacheError(f"{path}: no such cache file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise CacheError(f"{path}: not a readable HDF5 file ({e}); it may be partial: rebuild it") from None


def write_failures(f: h5py.File, failures) -> None:
    g = f.create_group("failures")
    cols = list(zip(*failures)) if failures else ([], [], [])
    for key, col in zip(("name", "stage", "reason"), cols):
        write_checked(g, key, [str(v) for v in col])


def read_failures(f: h5py.File) -> list[tuple[str, str, str]]:
    if "failures" not in f:
        return []
    g, path = f["failures"], Path(f.filename)
    return list(zip(*(decoded(read_checked(g[key], path)) for key in ("name", "stage", "reason"))))
