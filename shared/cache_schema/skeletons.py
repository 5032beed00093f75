"""`skeletons.h5`: the writer that streams cleaned samples into it, and the validated reader."""

from __future__ import annotations

import json
from contextlib import ExitStack
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from .. import __version__
from ..cache_io import atomic_path
from ..errors import CacheError
from .digest import damaged_reads, read_checked, write_checked
from .h5_output import H5Output
from ..dataset_spec import DatasetSpec, SampleMeta, dataset_from_card
from ..registry import DATASETS
from .common import (
    META_FIELDS,
    SCHEMA_VERSION,
    SKELETON_FILE,
    check_header,
    decoded,
    open_cache,
    names_hash,
    now,
    read_failures,
    write_failures,
)


FRAMES_PER_CHUNK = 64  # HDF5 chunk length of the per-frame arrays
# samples/source_stamp: per sample, the identity of the raw file it was read from (resolved path,
# size, mtime; stage1_extract/input_stamps.py), so a changed file is noticed; "" = unknown (an
# imported cache); files written before it existed have none (read as all "")
SOURCE_STAMP = "source_stamp"


class SkeletonCacheWriter:
    """Streams cleaned samples into a temporary file; `close()` makes it the skeleton cache.

    Usage: `with SkeletonCacheWriter(path, spec, source_root, params) as w: w.append(meta, ...)`.
    An exception (or a kill) inside the block leaves no file at `path`.
    """

    def __init__(self, path, spec: DatasetSpec, source_root="", params: dict | None = None):
        self.path, self.spec = Path(path), spec
        self.attrs = dict(source_root=str(source_root), params=json.dumps(params or {}, sort_keys=True))
        self.metas: list[SampleMeta] = []
        self.frame_counts: list[int] = []
        self.source_stamps: list[str] = []  # per sample: its raw file's stamp, "" unknown (stage1_extract)
        self.failures: list[tuple[str, str, str]] = []

    def __enter__(self):
        with ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(self.path))
            self._out = stack.enter_context(H5Output(tmp, self.path))
            self._stack = stack.pop_all()
        self._f = self._out.file
        m, v = self.spec.num_person, self.spec.layout.num_joints
        g = self._f.create_group("skeleton")
        # Chunks of whole frames: a sample's slice then decompresses a few chunks, not the ~30
        # small ones h5py's guess (256, 1, 7, 2) gives (per-sample reads 4x faster at NTU shape).
        # fletcher32: a checksum per chunk, so a damaged chunk is an error on read, not wrong frames.
        opts = dict(compression="lzf", fletcher32=True)
        f = FRAMES_PER_CHUNK
        self._joints = g.create_dataset(
            "joints", (0, m, v, 3), np.float32, maxshape=(None, m, v, 3), chunks=(f, m, v, 3), **opts
        )
        self._frame_index = g.create_dataset("frame_index", (0,), np.int32, maxshape=(None,), chunks=True, **opts)
        self._color = None
        if self.spec.color_resolution is not None:
            self._color = g.create_dataset(
                "color_xy", (0, m, v, 2), np.float32, maxshape=(None, m, v, 2), chunks=(f, m, v, 2), **opts
            )
            self._color.attrs["resolution"] = self.spec.color_resolution
        return self

    def append(
        self,
        meta: SampleMeta,
        joints: np.ndarray,
        frame_index: np.ndarray,
        color_xy: np.ndarray | None = None,
        source_stamp: str = "",
    ) -> None:
        t = len(joints)
        m, v = self.spec.num_person, self.spec.layout.num_joints
        if joints.shape[1:] != (m, v, 3) or t == 0:
            raise CacheError(f"{meta.name}: joints of shape {joints.shape}, expected (T>0, {m}, {v}, 3)")
        start = self._joints.shape[0]
        for ds, arr in ((self._joints, joints), (self._frame_index, frame_index), (self._color, color_xy)):
            if ds is None:
                continue
            if arr is None:  # a dataset with colour coordinates may lack them for one sample
                arr = np.zeros((t, m, v, 2), np.float32)
            ds.resize(start + t, axis=0)
            ds[start:] = arr
        self.metas.append(meta)
        self.frame_counts.append(t)
        self.source_stamps.append(source_stamp)
        self._out.check()  # a full disk stops the run here, not after every file is parsed

    def add_failure(self, name: str, stage: str, reason: str) -> None:
        self.failures.append((name, stage, reason))

    def __exit__(self, exc_type, exc, tb):
        # the stack closes the HDF5 file, then renames it into place, or deletes it on any error
        if exc_type is None:
            try:
                self._finish()
            except BaseException as e:
                if not self._stack.__exit__(type(e), e, e.__traceback__):
                    raise
                return False
        return self._stack.__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        f, spec = self._f, self.spec
        if not self.metas:
            raise CacheError(
                f"{self.path}: no sample could be read ({no_sample_reasons(self.failures)}); nothing written"
            )
        names = [m.name for m in self.metas]
        f.attrs.update(
            schema_version=SCHEMA_VERSION,
            kind="skeletons",
            dataset=spec.name,
            layout=spec.layout_name,
            num_person=spec.num_person,
            num_joints=spec.layout.num_joints,
            names_hash=names_hash(names),
            dataset_card=spec.card(),
            tool_version=__version__,
            created=now(),
            **self.attrs,
        )
        # the sample table under stored checksums (digest.py): bit rot is an error, not a wrong label
        write_checked(f["skeleton"], "offsets", np.concatenate([[0], np.cumsum(self.frame_counts)]), np.int64)
        s = f.create_group("samples")
        write_checked(s, "name", names)
        write_checked(s, "label", [spec.label_of_action(m.action) for m in self.metas], np.int64)
        for key in META_FIELDS:
            write_checked(s, key, [getattr(m, key) for m in self.metas], np.int32)
        write_checked(s, "frame_count", self.frame_counts, np.int32)
        write_checked(s, SOURCE_STAMP, self.source_stamps)
        for p in spec.protocols:
            write_checked(s, f"is_train/{p.name}", [p.is_train(m) for m in self.metas], bool)
        write_failures(f, self.failures)


def no_sample_reasons(failures: list[tuple[str, str, str]], shown: int = 3) -> str:
    """The failures of a run that read no sample, for its error message (the table is not written)."""
    if not failures:
        return "no sample listed"
    reasons = "; ".join(f"{name}: {reason}" for name, _, reason in failures[:shown])
    more = f" and {len(failures) - shown} more" if len(failures) > shown else ""
    return f"{len(failures)} failed: {reasons}{more}"


class SkeletonCache:
    """Read-only view of `skeletons.h5`, validated on open.

    Small tables (names, labels, splits, offsets) are read at once; frames are read per sample,
    or all at once with `load()` when they fit in memory.
    """

    def __init__(self, path):
        path = Path(path)
        self.path = path / SKELETON_FILE if path.is_dir() else path
        with open_cache(self.path) as f:
            check_header(f, self.path, "skeletons")
            try:
                self.attrs = dict(f.attrs)
                checked = lambda name: read_checked(f[name], self.path)  # noqa: E731
                self.names = decoded(checked("samples/name"))
                self.labels = checked("samples/label")
                self.meta = {k: checked(f"samples/{k}") for k in META_FIELDS + ("frame_count",)}
                self.splits = {k: read_checked(v, self.path) for k, v in f["samples/is_train"].items()}
                self.offsets = checked("skeleton/offsets")
                self.joints_shape = f["skeleton/joints"].shape
                self.has_color = "color_xy" in f["skeleton"]
                self.color_resolution = (
                    tuple(int(x) for x in f["skeleton/color_xy"].attrs["resolution"]) if self.has_color else None
                )
                self.failures = read_failures(f)
            except KeyError as e:
                raise CacheError(f"{self.path}: incomplete skeleton cache, missing {e}") from None
            except OSError as e:
                raise CacheError(
                    f"{self.path}: damaged, its sample table cannot be read ({_first_line(e)}); rebuild it"
                ) from None
        n = len(self.names)
        if (
            len(self.labels) != n
            or len(self.offsets) != n + 1
            or self.offsets[-1] != self.joints_shape[0]
            or self.attrs.get("names_hash") != names_hash(self.names)
        ):
            raise CacheError(f"{self.path}: inconsistent skeleton cache (sample table vs frames); rebuild it")
        self.dataset = str(self.attrs["dataset"])
        self.num_person = int(self.attrs["num_person"])
        self.num_joints = int(self.attrs["num_joints"])
        self.layout = str(self.attrs["layout"])
        self.names_hash = str(self.attrs["names_hash"])
        self._check_labels()
        self._f: h5py.File | None = None
        self._mem: dict[str, np.ndarray] | None = None

    def _check_labels(self) -> None:
        """Every label indexes a class of the dataset (a file written before checksums has only this check)."""
        num_classes = len(self.spec.classes)
        bad = np.flatnonzero((self.labels < 0) | (self.labels >= num_classes))
        if len(bad):
            i = int(bad[0])
            raise CacheError(
                f"{self.path}: sample {self.names[i]} has label {int(self.labels[i])}, outside "
                f"0..{num_classes - 1} ({len(bad)} such); the file is damaged: rebuild it"
            )

    def __len__(self) -> int:
        return len(self.names)

    @property
    def protocols(self) -> list[str]:
        return list(self.splits)

    @cached_property
    def spec(self) -> DatasetSpec:
        """The dataset: its registry entry, or, for a dataset the registry does not know (a custom
        one), the card this file stores (classes, layout, protocols)."""
        if self.dataset in DATASETS:
            return DATASETS[self.dataset]
        card = self.attrs.get("dataset_card")
        if card is None:
            raise CacheError(
                f"{self.path}: dataset {self.dataset!r} is not a built-in one and the file does not "
                f"describe it (no dataset_card); rebuild it with `mmcl extract`"
            )
        return dataset_from_card(self.dataset, str(card), self.splits, self.names)

    @cached_property
    def source_stamps(self) -> list[str]:
        """Per sample, the stamp of the raw file it was read from ("" = unknown); read on first use
        (only stage 1 needs it)."""
        with open_cache(self.path) as f:
            if f"samples/{SOURCE_STAMP}" not in f:
                return [""] * len(self.names)
            stamps = decoded(read_checked(f[f"samples/{SOURCE_STAMP}"], self.path))  # damage: one CacheError
        if len(stamps) != len(self.names):
            raise CacheError(
                f"{self.path}: inconsistent skeleton cache ({len(stamps)} source stamps for "
                f"{len(self.names)} samples); rebuild it"
            )
        return stamps

    def split_indices(self, protocol: str, train: bool) -> np.ndarray:
        if protocol not in self.splits:
            raise CacheError(
                f"{self.path}: dataset {self.dataset!r} has no protocol {protocol!r}; "
                f"choose one of: {', '.join(self.splits)}"
            )
        return np.flatnonzero(self.splits[protocol] == train)

    def load(self) -> "SkeletonCache":
        """Read all frames into memory (the default when they fit)."""
        with self._reading(), h5py.File(self.path, "r") as f:
            self._mem = {k: ds[()] for k, ds in f["skeleton"].items() if k != "offsets"}
        return self

    def _reading(self):
        """HDF5 reports a damaged chunk (checksum or decompression failure) as a bare OSError."""
        return damaged_reads(self.path, "its frames")

    def _arrays(self):
        if self._mem is not None:
            return self._mem
        if self._f is None:  # opened lazily so that each worker process gets its own handle
            self._f = h5py.File(self.path, "r")
        return self._f["skeleton"]

    def sample(self, i: int) -> dict[str, np.ndarray]:
        """joints (T, M, V, 3), frame_index (T,), and color_xy (T, M, V, 2) where present."""
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        arrays = self._arrays()
        keys = ("joints", "frame_index") + (("color_xy",) if self.has_color else ())
        with self._reading():
            return {k: arrays[k][a:b] for k in keys}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __getstate__(self):  # h5py handles do not cross process boundaries
        state = self.__dict__.copy()
        state["_f"] = None
        return state


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
