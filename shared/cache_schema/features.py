"""`features/<name>.h5`: a feature block (the per-sample arrays), the header that identifies a feature
set, writing, reading and merging parts of one, and the checked complete file stage 2 reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..cache_io import atomic_path
from ..errors import CacheError
from .digest import read_checked, write_checked
from .h5_output import H5Output
from .common import SCHEMA_VERSION, check_header, decoded, now, open_cache, read_failures, write_failures
from .skeletons import SkeletonCache


@dataclass(frozen=True)
class BlockShape:
    """Per-row sizes of a feature block's arrays."""

    frames: int  # K
    rgb_dim: int  # D
    questions: int  # Q
    text_dim: int  # D_text

    @classmethod
    def of(cls, block: "FeatureBlock") -> "BlockShape":
        _, k, d = block.rgb_frames.shape
        return cls(frames=k, rgb_dim=d, questions=block.yes_prob.shape[1], text_dim=block.text_embedding.shape[1])


@dataclass(frozen=True)
class BlockField:
    """One per-sample field of a feature block: its attribute, its dataset in the file, how it is stored."""

    attr: str  # FeatureBlock attribute
    path: str  # dataset in the feature file
    dtype: type | None  # stored dtype; None: a list of strings
    row_shape: tuple[str, ...] = ()  # BlockShape attributes: the shape of one row
    fill: float = 0  # an invalid row's value

    @property
    def is_text(self) -> bool:
        return self.dtype is None

    def shape(self, n: int, sizes: BlockShape) -> tuple[int, ...]:
        return (n,) + tuple(getattr(sizes, s) for s in self.row_shape)


BLOCK_FIELDS = (  # in the order they are written
    BlockField("name", "samples/name", None),
    BlockField("index", "samples/index", np.int64),
    BlockField("rgb_valid", "rgb/valid", bool),
    BlockField("rgb_pooled", "rgb/pooled", np.float16, ("rgb_dim",)),
    BlockField("rgb_frames", "rgb/frames", np.float16, ("frames", "rgb_dim")),
    BlockField("text_valid", "text/valid", bool),
    BlockField("yes_prob", "text/yes_prob", np.float32, ("questions",), fill=np.nan),  # NaN = undetermined
    BlockField("description", "text/description", None),
    BlockField("text_embedding", "text/embedding", np.float16, ("text_dim",)),
    # the identity of the sample's input when it was extracted (stage1_extract/input_stamps.py);
    # "" = unknown (a file written before stamps existed: read as all "")
    BlockField("input_stamp", "samples/input_stamp", None),
)
OPTIONAL_FIELDS = ("input_stamp",)


@dataclass
class FeatureBlock:
    """Features of a set of samples (rows of the skeleton file given by `index`); see BLOCK_FIELDS."""

    index: np.ndarray  # (n,) int64
    name: list[str]
    rgb_valid: np.ndarray  # (n,) bool
    rgb_pooled: np.ndarray  # (n, D) float16
    rgb_frames: np.ndarray  # (n, K, D) float16; (n, 0, D) unless extracted with --frame-features
    text_valid: np.ndarray  # (n,) bool
    yes_prob: np.ndarray  # (n, Q) float32, NaN = undetermined
    description: list[str]
    text_embedding: np.ndarray  # (n, D_text) float16
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    input_stamp: list[str] | None = None  # None: all unknown ("")

    def __post_init__(self) -> None:
        if self.input_stamp is None:
            self.input_stamp = [""] * len(self.index)

    def __len__(self) -> int:
        return len(self.index)

    @classmethod
    def empty(
        cls,
        index: np.ndarray,
        name: list[str],
        sizes: BlockShape,
        float_dtype=None,
        failures: list[tuple[str, str, str]] | None = None,
    ) -> "FeatureBlock":
        """Rows `index` all invalid: zero features, NaN answers, empty descriptions. Floating arrays
        in `float_dtype`, else as stored."""
        n = len(index)
        values = {}
        for fld in BLOCK_FIELDS[2:]:
            if fld.is_text:
                values[fld.attr] = [""] * n
            else:
                floating = np.issubdtype(fld.dtype, np.floating)
                dtype = float_dtype if floating and float_dtype is not None else fld.dtype
                values[fld.attr] = np.full(fld.shape(n, sizes), fld.fill, dtype)
        return cls(index=np.asarray(index, np.int64), name=list(name), failures=list(failures or []), **values)

    @classmethod
    def concat(cls, blocks: list["FeatureBlock"]) -> "FeatureBlock":
        blocks = [b for b in blocks if len(b)] or blocks[:1]
        values = {
            fld.attr: (
                sum((getattr(b, fld.attr) for b in blocks), [])
                if fld.is_text
                else np.concatenate([getattr(b, fld.attr) for b in blocks])
            )
            for fld in BLOCK_FIELDS
        }
        block = cls(**values, failures=sum((b.failures for b in blocks), []))
        order = np.argsort(block.index, kind="stable")
        return block.take(order)

    def take(self, rows: np.ndarray) -> "FeatureBlock":
        """The given rows, with the failures of those rows' samples."""
        values = {}
        for fld in BLOCK_FIELDS:
            seq = getattr(self, fld.attr)
            values[fld.attr] = [seq[i] for i in rows] if fld.is_text else seq[rows]
        kept = set(values["name"])
        return FeatureBlock(**values, failures=[f for f in self.failures if f[0] in kept])


@dataclass
class FeatureHeader:
    """What identifies a feature set: written as attributes, compared when parts are merged."""

    names_hash: str  # of the skeleton file's sample list
    num_samples: int  # rows in the skeleton file
    questions: list[str]
    class_names: list[str]
    class_embedding: np.ndarray  # (C, D_text)
    attrs: dict  # provenance: model ids and revisions, prompts, K, image sizes, versions, params


# A shard file's plan (shard I/N, --batch-size, --limit): which rows its run was asked for, so that
# `--merge` can check the shards cover every sample. Not provenance: the merged file does not keep it.
PLAN_ATTRS = ("plan_shard", "plan_batch_size", "plan_limit")
HEADER_ATTRS = ("schema_version", "kind", "names_hash", "num_samples", "complete", "created") + PLAN_ATTRS


def write_feature_file(
    path, header: FeatureHeader, block: FeatureBlock, complete: bool, plan: dict | None = None
) -> None:
    """Write a feature file (a whole set when `complete`, else a chunk or shard) atomically; `plan`:
    a shard's PLAN_ATTRS."""
    path = Path(path)
    needed = sum(np.asarray(getattr(block, fld.attr)).nbytes for fld in BLOCK_FIELDS if not fld.is_text)
    with atomic_path(path) as tmp, H5Output(tmp, path, needed) as out:
        f = out.file
        f.attrs.update(header.attrs)
        f.attrs.update(
            schema_version=SCHEMA_VERSION,
            kind="features",
            names_hash=header.names_hash,
            num_samples=header.num_samples,
            complete=complete,
            created=now(),
        )
        f.attrs.update(plan or {})
        for fld in BLOCK_FIELDS:  # each under a stored checksum (digest.py)
            write_checked(f, fld.path, getattr(block, fld.attr), fld.dtype)
            if fld.attr == "yes_prob":  # the questions beside their answers: the order files were always written in
                write_checked(f, "text/questions", list(header.questions))
        write_checked(f, "classes/name", list(header.class_names))
        write_checked(f, "classes/embedding", header.class_embedding, np.float16)
        write_failures(f, block.failures)


def read_feature_file(path, require_complete: bool = True) -> tuple[FeatureHeader, FeatureBlock]:
    header, arrays = read_feature_arrays(path, [fld.attr for fld in BLOCK_FIELDS], require_complete)
    with open_cache(Path(path)) as f:
        failures = read_failures(f)
    return header, FeatureBlock(**arrays, failures=failures)


def read_feature_arrays(path, attrs, require_complete: bool = True) -> tuple[FeatureHeader, dict]:
    """The header and only the block fields named in `attrs` (FeatureBlock attributes): a reader
    that needs the pooled RGB vector need not read the per-frame embeddings (rgb/frames, the
    file's bulk)."""
    path = Path(path)
    fields = [fld for fld in BLOCK_FIELDS if fld.attr in set(attrs)]
    with open_cache(path) as f:
        check_header(f, path, "features")
        if require_complete and not f.attrs.get("complete", False):
            raise CacheError(
                f"{path}: a partial feature file (a chunk or shard); merge the shards with `mmcl extract --merge`"
            )
        try:
            checked = lambda name: read_checked(f[name], path)  # noqa: E731
            header = FeatureHeader(
                names_hash=str(f.attrs["names_hash"]),
                num_samples=int(f.attrs["num_samples"]),
                questions=decoded(checked("text/questions")),
                class_names=decoded(checked("classes/name")),
                class_embedding=checked("classes/embedding"),
                attrs={k: v for k, v in f.attrs.items() if k not in HEADER_ATTRS},
            )
            arrays = {
                fld.attr: decoded(checked(fld.path)) if fld.is_text else checked(fld.path)
                for fld in fields
                if fld.attr not in OPTIONAL_FIELDS or fld.path in f
            }
        except KeyError as e:
            raise CacheError(f"{path}: incomplete feature file, missing {e}; re-run `mmcl extract`") from None
    if len({len(a) for a in arrays.values()}) > 1:
        raise CacheError(f"{path}: feature arrays disagree in length; rebuild the file")
    return header, arrays


def read_rows(path) -> tuple[dict, np.ndarray, list[str]]:
    """Attributes, row indices and sample names ("" = not extracted) of a feature file, without
    reading its arrays."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            return dict(f.attrs), read_checked(f["samples/index"], path), decoded(read_checked(f["samples/name"], path))
    except (OSError, KeyError) as e:
        raise CacheError(f"{path}: unreadable feature file ({e}); delete it to start again") from None


def same_feature_set(a: FeatureHeader, b: FeatureHeader) -> bool:
    """Parts of one feature set: same sample list, questions, classes and provenance (not times)."""
    return (
        a.names_hash == b.names_hash
        and a.questions == b.questions
        and a.class_names == b.class_names
        and json.dumps(a.attrs, sort_keys=True, default=str) == json.dumps(b.attrs, sort_keys=True, default=str)
    )


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
            raise CacheError(
                f"{p}: not part of the same feature set as {parts[0]} (different samples, prompts or models)"
            )
    block = FeatureBlock.concat(list(blocks))
    if len(np.unique(block.index)) != len(block):
        raise CacheError(f"{out}: the parts overlap (a sample appears twice)")
    n = headers[0].num_samples
    if len(block) != n:
        if not allow_missing:
            raise CacheError(f"{out}: the parts cover {len(block)} of {n} samples; run the missing shards first")
        block = _fill_missing(block, n)
    write_feature_file(out, headers[0], block, complete=True)
    return block


def _fill_missing(block: FeatureBlock, n: int) -> FeatureBlock:
    """Grow a block to rows 0..n-1, the absent ones invalid (zero features, NaN answers)."""
    full = FeatureBlock.empty(np.arange(n), [""] * n, BlockShape.of(block), failures=block.failures)
    for fld in BLOCK_FIELDS:
        if fld.attr == "index":
            continue
        target, source = getattr(full, fld.attr), getattr(block, fld.attr)
        if fld.is_text:
            for row, i in enumerate(block.index):
                target[i] = source[row]
        else:
            target[block.index] = source
    return full


class FeatureFile:
    """A complete feature set checked against its skeleton cache; arrays in skeleton order."""

    def __init__(self, path, skeletons: SkeletonCache | None = None):
        self.path = Path(path)
        self.header, self.block = read_feature_file(self.path, require_complete=True)
        if skeletons is not None:
            self.check_matches(skeletons)

    def check_matches(self, skeletons: SkeletonCache) -> None:
        check_rows(self.path, self.header, self.block.index, skeletons)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def text_input(self) -> np.ndarray:
        return text_input(self.block.yes_prob, self.block.text_embedding)


def check_rows(path: Path, header: FeatureHeader, index: np.ndarray, skeletons: SkeletonCache) -> None:
    """A complete feature set's rows are the skeleton cache's samples, in its order."""
    if header.names_hash != skeletons.names_hash or len(index) != len(skeletons):
        raise CacheError(
            f"{path} was extracted for a different sample list than {skeletons.path} "
            f"(sample-name hash differs); re-run `mmcl extract` for this skeleton cache"
        )
    if not np.array_equal(index, np.arange(len(skeletons))):
        raise CacheError(f"{path}: rows are not in skeleton order; rebuild it")


def text_input(yes_prob: np.ndarray, text_embedding: np.ndarray) -> np.ndarray:
    """FRM's input: yes-probabilities (NaN -> 0.5, i.e. no information) then the embedding."""
    yes = np.nan_to_num(yes_prob, nan=0.5)
    return np.concatenate([yes, text_embedding.astype(np.float32)], axis=1)
