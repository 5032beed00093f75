"""Writing HDF5 files so that a failing disk is one clear error, never a crash.

After a failed write (full disk, file-size limit) HDF5 2.0 crashes the interpreter (segmentation
fault) when the file is closed, or at exit if it is not. So HDF5 never sees a failure: it writes
through `FailSoftFile`, which passes bytes to the real file and, from the first failure on, keeps
the error and reports success. The writer asks `check()` between steps and the file is discarded
(it is always a temporary file: see shared.cache_io.atomic_path); the error names the output.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py

from ..cache_io import output_error


class FailSoftFile:
    """A binary file for h5py's file-object driver whose writes never raise (see the module).

    From the first failure on, writes are kept in memory and reads see them, so HDF5 goes on
    reading back what it believes it wrote (it crashes on garbage) until the writer stops."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = open(self.path, "w+b", buffering=0)  # unbuffered: a failure shows at its write
        self.error: OSError | None = None
        self.written = 0
        self._pos = 0
        self._kept: list[tuple[int, bytes]] = []  # (offset, data) written after the failure

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                self._file.seek(self._pos)
                done = 0
                while done < len(view):  # the last write before a size limit is short
                    done += self._file.write(view[done:])
                self.written += done
            except OSError as e:
                self.error = e
        if self.error is not None:
            self._kept.append((self._pos, bytes(view)))
        self._pos += len(view)
        return len(view)

    def readinto(self, buffer) -> int:
        out = memoryview(buffer).cast("B")
        self._file.seek(self._pos)
        got = self._file.readinto(out) or 0
        out[got:] = bytes(len(out) - got)  # past the end: zeros, as HDF5 expects
        for offset, data in self._kept:  # in write order: later writes win
            lo, hi = max(offset, self._pos), min(offset + len(data), self._pos + len(out))
            if lo < hi:
                out[lo - self._pos : hi - self._pos] = data[lo - offset : hi - offset]
        self._pos += len(out)
        return len(out)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            size = max(os.fstat(self._file.fileno()).st_size - self._pos, 0)
        buffer = bytearray(size)
        self.readinto(buffer)
        return bytes(buffer)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = max([os.fstat(self._file.fileno()).st_size] + [o + len(d) for o, d in self._kept]) + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                self._file.truncate(size)
            except OSError as e:
                self.error = e
        return size

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        self._file.close()


class H5Output:
    """`with H5Output(tmp, path) as out: out.file[...] = ...; out.check()`: an HDF5 file written
    at `tmp` (a temporary name of `path`) whose disk failures raise OutputError naming `path`."""

    def __init__(self, tmp: Path, path: Path, needed: int | None = None):
        self.tmp, self.path, self.needed = Path(tmp), Path(path), needed

    def __enter__(self) -> "H5Output":
        try:
            self._raw = FailSoftFile(self.tmp)
        except OSError as e:
            raise output_error(self.path, e, self.needed) from None
        self.file = h5py.File(self._raw, "w")
        return self

    def check(self) -> None:
        """Raise OutputError if a write has failed so far."""
        if self._raw.error is not None:
            raise output_error(self.path, self._raw.error, self.needed, self._raw.written) from None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.file.close()  # safe: HDF5 has seen no failure
        except Exception:
            if self._raw.error is None:
                raise
        finally:
            self._raw.close()
        self.check()  # a disk failure is the cause of whatever else went wrong
