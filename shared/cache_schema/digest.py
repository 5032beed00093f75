"""Checksums of the small tables a cache file holds, so bit rot is an error naming the file and
dataset instead of a silently wrong label, split or feature row.

Every dataset written with `write_checked` carries a SHA-256 of its values in the attribute
`sha256`; `read_checked` recomputes it on read and raises CacheError on a mismatch. Files written
before digests existed have no attribute and are read unchecked. The large per-frame arrays are
covered by HDF5's per-chunk fletcher32 instead (see skeletons.py); `damaged_reads` turns HDF5's bare
OSError for a bad chunk into the same one-line CacheError.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import h5py
import numpy as np

from ..errors import CacheError

DIGEST_ATTR = "sha256"


def digest(values) -> str:
    """SHA-256 of a dataset's values: numbers by dtype, shape and bytes; strings item by item (UTF-8)."""
    h = hashlib.sha256()
    array = np.asarray(values)
    if array.dtype.kind in "OUS":  # strings, as written (str) or as read back (bytes)
        h.update(b"strings")
        for item in array.reshape(-1):
            h.update(item if isinstance(item, bytes) else str(item).encode())
            h.update(b"\0")
        return h.hexdigest()
    array = np.ascontiguousarray(array)
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()


def write_checked(group: h5py.Group, name: str, values, dtype=None) -> h5py.Dataset:
    """Create `group[name]` from `values` (converted to `dtype`; None: strings or as given) with its digest."""
    if dtype is None and _is_text(values):
        ds = group.create_dataset(name, data=list(values), dtype=h5py.string_dtype("utf-8"))
        ds.attrs[DIGEST_ATTR] = digest(np.asarray(list(values), dtype=object))
        return ds
    array = np.asarray(values) if dtype is None else np.asarray(values).astype(dtype)
    ds = group.create_dataset(name, data=array)
    ds.attrs[DIGEST_ATTR] = digest(array)
    return ds


def read_checked(ds: h5py.Dataset, path: Path):
    """`ds[()]`, refused (CacheError naming file and dataset) when it differs from its stored digest."""
    with damaged_reads(path, ds.name):
        values = ds[()]
        stored = ds.attrs.get(DIGEST_ATTR)
    if stored is not None and digest(values) != _text(stored):
        raise CacheError(
            f"{path}: damaged, dataset {ds.name} does not match its checksum (bit rot or an "
            f"edit); rebuild the file with `mmcl extract`"
        )
    return values


@contextlib.contextmanager
def damaged_reads(path: Path, what: str):
    """HDF5 reports a damaged chunk (checksum or decompression failure) as a bare OSError: one line instead."""
    try:
        yield
    except OSError as e:
        raise CacheError(
            f"{path}: damaged, {what} cannot be read ({_first_line(e)}); rebuild it "
            f"(delete it and rerun `mmcl extract`)"
        ) from None


def _is_text(values) -> bool:
    return isinstance(values, (list, tuple)) and (not values or isinstance(values[0], str))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
