"""The HDF5 cache layout shared by stage 1 (writer) and stage 2 (reader).

    cache/<dataset>/skeletons.h5
        attrs: schema_version, kind="skeletons", dataset, layout, num_person, num_joints,
               names_hash, tool_version, created, source_root, params (JSON)
        samples/  name, label, subject, camera, setup, replication, frame_count, is_train/<protocol>
        skeleton/ joints (sum T, M, V, 3) f32, offsets (N+1,) i64, frame_index (sum T,) i32,
                  color_xy (sum T, M, V, 2) f32 with attr resolution=(W, H) where the dataset has it
        failures/ name, stage, reason
    cache/<dataset>/features/<name>.h5
        attrs: schema_version, kind="features", names_hash (of the skeleton file's names), ...
        samples/  name, index (row in skeletons.h5)
        rgb/      valid (N,) bool, pooled (N, D) f16, frames (N, K, D) f16
        text/     valid (N,) bool, yes_prob (N, Q) f32 (NaN = undetermined), questions (Q,),
                  description (N,), embedding (N, D_text) f16
        classes/  name (C,), embedding (C, D_text) f16
        failures/ name, stage, reason

A feature file covers the skeleton file's samples in the same order. Partial files (chunks of a
running extraction, shards of a sharded one) have the same layout over a subset of rows, with
`samples/index` saying which, and attribute complete=False.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .cache_io import atomic_path
from .errors import CacheError
from .registry import DatasetSpec, SampleMeta

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


def _strings(ds) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in ds[()]]


def _check_header(f: h5py.File, path: Path, kind: str) -> None:
    version = f.attrs.get("schema_version")
    if f.attrs.get("kind") != kind or version is None:
        raise CacheError(f"{path}: not an mmcl {kind} file (attribute kind/schema_version missing)")
    if int(version) != SCHEMA_VERSION:
        raise CacheError(
            f"{path}: written with cache schema version {int(version)}, this mmcl-action reads "
            f"version {SCHEMA_VERSION}; re-run `mmcl extract` to rebuild it")


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise CacheError(f"{path}: no such cache file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise CacheError(f"{path}: not a readable HDF5 file ({e}); it may be partial: rebuild it") from None


# --------------------------------------------------------------------------- skeletons


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
        self.failures: list[tuple[str, str, str]] = []

    def __enter__(self):
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._f = h5py.File(self._tmp, "w")
        m, v = self.spec.num_person, self.spec.layout.num_joints
        g = self._f.create_group("skeleton")
        opts = dict(chunks=True, compression="lzf")
        self._joints = g.create_dataset("joints", (0, m, v, 3), np.float32, maxshape=(None, m, v, 3), **opts)
        self._frame_index = g.create_dataset("frame_index", (0,), np.int32, maxshape=(None,), **opts)
        self._color = None
        if self.spec.color_resolution is not None:
            self._color = g.create_dataset("color_xy", (0, m, v, 2), np.float32, maxshape=(None, m, v, 2), **opts)
            self._color.attrs["resolution"] = self.spec.color_resolution
        return self

    def append(self, meta: SampleMeta, joints: np.ndarray, frame_index: np.ndarray,
               color_xy: np.ndarray | None = None) -> None:
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

    def add_failure(self, name: str, stage: str, reason: str) -> None:
        self.failures.append((name, stage, reason))

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._finish()
            self._f.close()
        finally:
            return self._atomic.__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        f, spec = self._f, self.spec
        if not self.metas:
            raise CacheError(f"{self.path}: no sample could be read; see the failures above")
        names = [m.name for m in self.metas]
        f.attrs.update(
            schema_version=SCHEMA_VERSION, kind="skeletons", dataset=spec.name,
            layout=spec.layout_name, num_person=spec.num_person, num_joints=spec.layout.num_joints,
            names_hash=names_hash(names), tool_version=__version__, created=now(), **self.attrs)
        f["skeleton/offsets"] = np.concatenate([[0], np.cumsum(self.frame_counts)]).astype(np.int64)
        s = f.create_group("samples")
        s.create_dataset("name", data=names, dtype=STR)
        s["label"] = np.array([spec.label_of_action(m.action) for m in self.metas], np.int64)
        for key in META_FIELDS:
            s[key] = np.array([getattr(m, key) for m in self.metas], np.int32)
        s["frame_count"] = np.array(self.frame_counts, np.int32)
        for p in spec.protocols:
            s[f"is_train/{p.name}"] = np.array([p.is_train(m) for m in self.metas], bool)
        write_failures(f, self.failures)


def write_failures(f: h5py.File, failures) -> None:
    g = f.create_group("failures")
    cols = list(zip(*failures)) if failures else ([], [], [])
    for key, col in zip(("name", "stage", "reason"), cols):
        g.create_dataset(key, data=list(col), dtype=STR)


def read_failures(f: h5py.File) -> list[tuple[str, str, str]]:
    if "failures" not in f:
        return []
    g = f["failures"]
    return list(zip(_strings(g["name"]), _strings(g["stage"]), _strings(g["reason"])))


class SkeletonCache:
    """Read-only view of `skeletons.h5`, validated on open.

    Small tables (names, labels, splits, offsets) are read at once; frames are read per sample,
    or all at once with `load()` when they fit in memory.
    """

    def __init__(self, path):
        path = Path(path)
        self.path = path / SKELETON_FILE if path.is_dir() else path
        with _open(self.path) as f:
            _check_header(f, self.path, "skeletons")
            try:
                self.attrs = dict(f.attrs)
                self.names = _strings(f["samples/name"])
                self.labels = f["samples/label"][()]
                self.meta = {k: f[f"samples/{k}"][()] for k in META_FIELDS + ("frame_count",)}
                self.splits = {k: v[()] for k, v in f["samples/is_train"].items()}
                self.offsets = f["skeleton/offsets"][()]
                self.joints_shape = f["skeleton/joints"].shape
                self.has_color = "color_xy" in f["skeleton"]
                self.color_resolution = (tuple(int(x) for x in f["skeleton/color_xy"].attrs["resolution"])
                                         if self.has_color else None)
                self.failures = read_failures(f)
            except KeyError as e:
                raise CacheError(f"{self.path}: incomplete skeleton cache, missing {e}") from None
        n = len(self.names)
        if (len(self.labels) != n or len(self.offsets) != n + 1 or self.offsets[-1] != self.joints_shape[0]
                or self.attrs.get("names_hash") != names_hash(self.names)):
            raise CacheError(f"{self.path}: inconsistent skeleton cache (sample table vs frames); rebuild it")
        self.dataset = str(self.attrs["dataset"])
        self.num_person = int(self.attrs["num_person"])
        self.num_joints = int(self.attrs["num_joints"])
        self.layout = str(self.attrs["layout"])
        self.names_hash = str(self.attrs["names_hash"])
        self._f: h5py.File | None = None
        self._mem: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def protocols(self) -> list[str]:
        return list(self.splits)

    def split_indices(self, protocol: str, train: bool) -> np.ndarray:
        if protocol not in self.splits:
            raise CacheError(f"{self.path}: dataset {self.dataset!r} has no protocol {protocol!r}; "
                             f"choose one of: {', '.join(self.splits)}")
        return np.flatnonzero(self.splits[protocol] == train)

    def load(self) -> "SkeletonCache":
        """Read all frames into memory (the default when they fit)."""
        with h5py.File(self.path, "r") as f:
            self._mem = {k: ds[()] for k, ds in f["skeleton"].items() if k != "offsets"}
        return self

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
        return {k: arrays[k][a:b] for k in keys}

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __getstate__(self):  # h5py handles do not cross process boundaries
        state = self.__dict__.copy()
        state["_f"] = None
        return state


# --------------------------------------------------------------------------- features


@dataclass
class FeatureBlock:
    """Features of a set of samples (rows of the skeleton file given by `index`)."""

    index: np.ndarray  # (n,) int64
    name: list[str]
    rgb_valid: np.ndarray  # (n,) bool
    rgb_pooled: np.ndarray  # (n, D) float16
    rgb_frames: np.ndarray  # (n, K, D) float16
    text_valid: np.ndarray  # (n,) bool
    yes_prob: np.ndarray  # (n, Q) float32, NaN = undetermined
    description: list[str]
    text_embedding: np.ndarray  # (n, D_text) float16
    failures: list[tuple[str, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def concat(cls, blocks: list["FeatureBlock"]) -> "FeatureBlock":
        blocks = [b for b in blocks if len(b)] or blocks[:1]
        cat = lambda key: np.concatenate([getattr(b, key) for b in blocks])  # noqa: E731
        block = cls(
            index=cat("index"), name=sum((b.name for b in blocks), []), rgb_valid=cat("rgb_valid"),
            rgb_pooled=cat("rgb_pooled"), rgb_frames=cat("rgb_frames"), text_valid=cat("text_valid"),
            yes_prob=cat("yes_prob"), description=sum((b.description for b in blocks), []),
            text_embedding=cat("text_embedding"), failures=sum((b.failures for b in blocks), []))
        order = np.argsort(block.index, kind="stable")
        return block.take(order)

    def take(self, rows: np.ndarray) -> "FeatureBlock":
        """The given rows, with the failures of those rows' samples."""
        pick = lambda seq: [seq[i] for i in rows]  # noqa: E731
        names = pick(self.name)
        kept = set(names)
        return FeatureBlock(
            self.index[rows], names, self.rgb_valid[rows], self.rgb_pooled[rows],
            self.rgb_frames[rows], self.text_valid[rows], self.yes_prob[rows], pick(self.description),
            self.text_embedding[rows], [f for f in self.failures if f[0] in kept])


@dataclass
class FeatureHeader:
    """What identifies a feature set: written as attributes, compared when parts are merged."""

    names_hash: str  # of the skeleton file's sample list
    num_samples: int  # rows in the skeleton file
    questions: list[str]
    class_names: list[str]
    class_embedding: np.ndarray  # (C, D_text)
    attrs: dict  # provenance: model ids and revisions, prompts, K, image sizes, versions, params


def write_feature_file(path, header: FeatureHeader, block: FeatureBlock, complete: bool) -> None:
    """Write a feature file (a whole set when `complete`, else a chunk or shard) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(header.attrs)
        f.attrs.update(schema_version=SCHEMA_VERSION, kind="features", names_hash=header.names_hash,
                       num_samples=header.num_samples, complete=complete, created=now())
        s = f.create_group("samples")
        s.create_dataset("name", data=block.name, dtype=STR)
        s["index"] = block.index.astype(np.int64)
        f["rgb/valid"] = block.rgb_valid.astype(bool)
        f["rgb/pooled"] = block.rgb_pooled.astype(np.float16)
        f["rgb/frames"] = block.rgb_frames.astype(np.float16)
        f["text/valid"] = block.text_valid.astype(bool)
        f["text/yes_prob"] = block.yes_prob.astype(np.float32)
        f.create_dataset("text/questions", data=header.questions, dtype=STR)
        f.create_dataset("text/description", data=block.description, dtype=STR)
        f["text/embedding"] = block.text_embedding.astype(np.float16)
        f.create_dataset("classes/name", data=header.class_names, dtype=STR)
        f["classes/embedding"] = np.asarray(header.class_embedding, np.float16)
        write_failures(f, block.failures)


def read_feature_file(path, require_complete: bool = True) -> tuple[FeatureHeader, FeatureBlock]:
    path = Path(path)
    with _open(path) as f:
        _check_header(f, path, "features")
        if require_complete and not f.attrs.get("complete", False):
            raise CacheError(f"{path}: a partial feature file (a chunk or shard); merge the shards "
                             f"with `mmcl extract --merge`")
        try:
            header = FeatureHeader(
                names_hash=str(f.attrs["names_hash"]), num_samples=int(f.attrs["num_samples"]),
                questions=_strings(f["text/questions"]), class_names=_strings(f["classes/name"]),
                class_embedding=f["classes/embedding"][()],
                attrs={k: v for k, v in f.attrs.items()
                       if k not in ("schema_version", "kind", "names_hash", "num_samples", "complete", "created")})
            block = FeatureBlock(
                index=f["samples/index"][()], name=_strings(f["samples/name"]),
                rgb_valid=f["rgb/valid"][()], rgb_pooled=f["rgb/pooled"][()], rgb_frames=f["rgb/frames"][()],
                text_valid=f["text/valid"][()], yes_prob=f["text/yes_prob"][()],
                description=_strings(f["text/description"]), text_embedding=f["text/embedding"][()],
                failures=read_failures(f))
        except KeyError as e:
            raise CacheError(f"{path}: incomplete feature file, missing {e}; re-run `mmcl extract`") from None
    n = len(block)
    if any(len(x) != n for x in (block.name, block.rgb_valid, block.rgb_pooled, block.text_valid,
                                  block.yes_prob, block.description, block.text_embedding)):
        raise CacheError(f"{path}: feature arrays disagree in length; rebuild the file")
    return header, block


def same_feature_set(a: FeatureHeader, b: FeatureHeader) -> bool:
    """Parts of one feature set: same sample list, questions, classes and provenance (not times)."""
    return (a.names_hash == b.names_hash and a.questions == b.questions
            and a.class_names == b.class_names and json.dumps(a.attrs, sort_keys=True, default=str)
            == json.dumps(b.attrs, sort_keys=True, default=str))


def merge_feature_parts(parts: list[Path], out: Path, allow_missing: bool = False) -> FeatureBlock:
    """Join chunk or shard files of one feature set into the complete file `out`.

    Rows not covered by any part are an error unless `allow_missing` (then they are stored
    invalid, which stage 2 masks), e.g. after `--limit`.
    """
    if not parts:
        raise CacheError(f"{out}: no parts to merge")
    headers, blocks = zip(*(read_feature_file(p, require_complete=False) for p in parts))
    for p, h in zip(parts[1:], headers[1:]):
        if not same_feature_set(headers[0], h):
            raise CacheError(f"{p}: not part of the same feature set as {parts[0]} "
                             f"(different samples, prompts or models)")
    block = FeatureBlock.concat(list(blocks))
    if len(np.unique(block.index)) != len(block):
        raise CacheError(f"{out}: the parts overlap (a sample appears twice)")
    n = headers[0].num_samples
    if len(block) != n:
        if not allow_missing:
            raise CacheError(f"{out}: the parts cover {len(block)} of {n} samples; run the missing "
                             f"shards first")
        block = _fill_missing(block, n)
    write_feature_file(out, headers[0], block, complete=True)
    return block


def _fill_missing(block: FeatureBlock, n: int) -> FeatureBlock:
    """Grow a block to rows 0..n-1, the absent ones invalid (zero features, NaN answers)."""
    full = FeatureBlock(
        index=np.arange(n), name=[""] * n, rgb_valid=np.zeros(n, bool),
        rgb_pooled=np.zeros((n,) + block.rgb_pooled.shape[1:], np.float16),
        rgb_frames=np.zeros((n,) + block.rgb_frames.shape[1:], np.float16),
        text_valid=np.zeros(n, bool), yes_prob=np.full((n,) + block.yes_prob.shape[1:], np.nan, np.float32),
        description=[""] * n, text_embedding=np.zeros((n,) + block.text_embedding.shape[1:], np.float16),
        failures=block.failures)
    for arr in ("rgb_valid", "rgb_pooled", "rgb_frames", "text_valid", "yes_prob", "text_embedding"):
        getattr(full, arr)[block.index] = getattr(block, arr)
    for row, i in enumerate(block.index):
        full.name[i], full.description[i] = block.name[row], block.description[row]
    return full


class FeatureFile:
    """A complete feature set checked against its skeleton cache; arrays in skeleton order."""

    def __init__(self, path, skeletons: SkeletonCache | None = None):
        self.path = Path(path)
        self.header, self.block = read_feature_file(self.path, require_complete=True)
        if skeletons is not None:
            self.check_matches(skeletons)

    def check_matches(self, skeletons: SkeletonCache) -> None:
        if self.header.names_hash != skeletons.names_hash or len(self.block) != len(skeletons):
            raise CacheError(
                f"{self.path} was extracted for a different sample list than {skeletons.path} "
                f"(sample-name hash differs); re-run `mmcl extract` for this skeleton cache")
        if not np.array_equal(self.block.index, np.arange(len(skeletons))):
            raise CacheError(f"{self.path}: rows are not in skeleton order; rebuild it")

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def text_input(self) -> np.ndarray:
        """FRM's input: yes-probabilities (NaN -> 0.5, i.e. no information) then the embedding."""
        yes = np.nan_to_num(self.block.yes_prob, nan=0.5)
        return np.concatenate([yes, self.block.text_embedding.astype(np.float32)], axis=1)


# --------------------------------------------------------------------------- locating caches


def dataset_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob(f"*/{SKELETON_FILE}"))


def resolve_dataset_dir(cache: str | Path, dataset: str | None = None) -> Path:
    """`--cache` is a dataset directory, or a root holding exactly one (or `dataset`'s)."""
    cache = Path(cache)
    if (cache / SKELETON_FILE).exists():
        return cache
    if dataset is not None and (cache / dataset / SKELETON_FILE).exists():
        return cache / dataset
    found = dataset_dirs(cache) if cache.is_dir() else []
    if len(found) == 1 and dataset is None:
        return found[0]
    if not found:
        raise CacheError(f"no skeleton cache under {cache} (looked for {cache / SKELETON_FILE} and "
                         f"{cache}/*/{SKELETON_FILE}); run `mmcl extract --dataset NAME --out {cache}` first")
    raise CacheError(f"{cache} holds several datasets ({', '.join(p.name for p in found)}); choose one "
                     f"with --cache {found[0]} (or --dataset {found[0].name})")


def feature_files(dataset_dir: Path) -> list[Path]:
    """Complete feature sets of a dataset directory (shard and chunk files excluded)."""
    return sorted(p for p in (Path(dataset_dir) / FEATURES_DIR).glob("*.h5") if ".shard-" not in p.name)


def resolve_features(dataset_dir: Path, name: str | None) -> Path:
    """`--features NAME`, or the only feature set present; a clear error otherwise."""
    found = feature_files(dataset_dir)
    if name is not None:
        for p in found:
            if name in (p.stem, p.name, str(p)):
                return p
        if Path(name).is_file():
            return Path(name)
        listed = ", ".join(p.stem for p in found) or "none"
        raise CacheError(f"no feature set {name!r} in {dataset_dir / FEATURES_DIR} (present: {listed})")
    if len(found) == 1:
        return found[0]
    if not found:
        raise CacheError(
            f"no feature file in {dataset_dir / FEATURES_DIR}: FAM needs rgb/pooled and FRM needs "
            f"text/* from `mmcl extract --dataset {dataset_dir.name}` (without --skeletons-only), "
            f"or train the plain backbone with --no-fam --no-frm")
    raise CacheError(f"several feature sets in {dataset_dir / FEATURES_DIR}: "
                     f"{', '.join(p.stem for p in found)}; choose one with --features NAME")
