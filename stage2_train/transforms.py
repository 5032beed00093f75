"""Stage 2's data pipeline: cached skeletons and features -> padded batches -> augmented windows.

The Dataset only slices raw variable-length sequences (T, M, V, 3) out of the cache; `collate`
pads them to the batch's longest; `BatchAugment` then normalises, crops, resizes and rotates the
whole batch at once on the training device. This is CTR-GCN's feeder done in batch:

- crop-rotate (NTU and the default, `feeders/feeder_ntu.py` + `tools.py`): train takes a random
  crop of ratio p ~ U[crop] of the valid frames (at least `window` frames, as the reference's
  bound of 64), test a centre crop of ratio `test_crop`; either is resized to `window` frames by
  linear interpolation (`F.interpolate(bilinear, align_corners=False)`); train then rotates each
  sample by one random rotation, every axis uniform in [-rotate, rotate] rad.
- ucla-view (`feeders/feeder_ucla.py`): a random view change (integer degrees in [-60, 60] about
  x and y, scale U[0.5, 1.5]) at train time, min-max scaling of each axis to [-1, 1] (over the
  present persons; an absent one stays zero), and `window` frames sampled at random (sorted) for
  training or evenly spaced for testing.

A cache in another skeleton layout than the network's (fine-tuning an NTU-25 model on Kinect v1
data) is first mapped joint by joint and padded with absent persons (`input_layout`), as
zero-shot and predict map theirs. Both augmentations then start from the one normalisation
every dataset gets (`shared.normalization`): the layout's centre joint of actor 1's first frame
becomes the origin; an absent second person stays zero. crop-rotate applies it to the frames it
gathers (equal, and much cheaper than rewriting the padded batch); ucla-view to the whole batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from shared.cache_schema import FeatureFile, SkeletonCache, resolve_features
from shared.errors import CacheError, MMCLError
from shared.layouts import Layout, LayoutMap, describe_layout_maps, get_layout, layout_map, pad_persons
from shared.normalization import translate_to_origin_torch

from .streams import canonical_stream, make_stream, to_model_input

# --------------------------------------------------------------------------- frames


class JointSource:
    """Every sample's frames: in memory (the default when they fit), else read per sample from
    HDF5 with one file handle per worker process. Only `skeleton/joints` is read: the cache's
    `load()` would also hold the colour coordinates, which training never uses."""

    def __init__(self, cache: SkeletonCache, in_memory: bool | None = None) -> None:
        self.path, self.offsets = cache.path, cache.offsets
        self.nbytes = int(np.prod(cache.joints_shape)) * 4
        self.in_memory = fits_in_memory(self.nbytes) if in_memory is None else in_memory
        self._joints: np.ndarray | h5py.Dataset | None = None
        self._file: h5py.File | None = None
        if self.in_memory:
            with h5py.File(self.path, "r") as f:
                self._joints = f["skeleton/joints"][()]

    def __getitem__(self, row: int) -> np.ndarray:
        if self._joints is None:  # opened lazily: h5py handles do not survive a fork
            self._file = h5py.File(self.path, "r")
            self._joints = self._file["skeleton/joints"]
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        return np.asarray(self._joints[a:b], dtype=np.float32)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if not self.in_memory:
            state["_file"] = state["_joints"] = None
        return state


def fits_in_memory(nbytes: int, share: float = 0.5) -> bool:
    """True when `nbytes` is below `share` of the memory available now."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return False
    return nbytes < share * available


# --------------------------------------------------------------------------- input layout


class MappedJoints:
    """A JointSource seen in another skeleton layout, padded with absent persons: how a network
    trained on one layout reads another's cache (fine-tuning, zero-shot)."""

    def __init__(self, source: JointSource, convert: LayoutMap, num_person: int) -> None:
        self.source, self.convert, self.num_person = source, convert, num_person

    @property
    def in_memory(self) -> bool:
        return self.source.in_memory

    def __getitem__(self, row: int) -> np.ndarray:
        return pad_persons(self.convert(self.source[row]), self.num_person)


@dataclass(frozen=True)
class InputLayout:
    """The skeleton layout and number of persons the network takes, and how a cache's joints
    (`source` layout, `source_persons`) get there."""

    source: str
    source_persons: int
    layout: Layout
    num_person: int
    convert: LayoutMap

    @property
    def changed(self) -> bool:
        return self.source != self.layout.name or self.source_persons != self.num_person

    def joints(self, source: JointSource) -> JointSource | MappedJoints:
        """`source` as the network reads it (itself when nothing changes)."""
        return MappedJoints(source, self.convert, self.num_person) if self.changed else source

    def describe(self) -> str:
        def persons(n: int) -> str:
            return f"{n} person{'s' * (n != 1)}"

        return (f"{self.source} ({get_layout(self.source).num_joints} joints, {persons(self.source_persons)})"
                f" -> {self.layout.name} ({self.layout.num_joints} joints, {persons(self.num_person)})")


def input_layout(skeletons: SkeletonCache, layout: str | None = None, persons: int | None = None) -> InputLayout:
    """How the network reads `skeletons`: in `layout` (None: the cache's own; e.g. ntu25 maps
    Kinect v1 joints) with `persons` persons (None: the cache's; more pads with absent ones)."""
    name = layout or skeletons.layout
    try:
        target = get_layout(name)
    except KeyError as e:
        raise MMCLError(f"--layout {name}: {e.args[0]}") from None
    convert = layout_map(skeletons.layout, name)
    if convert is None:
        raise MMCLError(f"{skeletons.path} holds {skeletons.layout} skeletons ({skeletons.num_joints} joints): "
                        f"no mapping to {name} (known: {describe_layout_maps()}); drop --layout to train "
                        f"on the cache's own layout")
    num_person = persons or skeletons.num_person
    if num_person < skeletons.num_person:
        raise MMCLError(f"{skeletons.path} holds up to {skeletons.num_person} persons per sample: "
                        f"--persons {num_person} cannot hold them")
    return InputLayout(skeletons.layout, skeletons.num_person, target, num_person, convert)


# --------------------------------------------------------------------------- features


@dataclass
class FeatureArrays:
    """FAM's target and FRM's input for every sample of the cache, in skeleton order.

    Rows of invalid samples hold zeros (finite filler) and are masked out of the loss.
    """

    name: str
    path: Path
    attrs: dict  # provenance: model ids and revisions, prompts, versions
    questions: list[str]  # the MLLM questions behind yes_prob's columns
    rgb: np.ndarray | None  # (N, D) float32, rgb/pooled
    rgb_valid: np.ndarray | None  # (N,) bool
    text: np.ndarray | None  # (N, Q + D_text) float32: yes_prob (NaN -> 0.5) ++ text/embedding
    text_valid: np.ndarray | None  # (N,) bool

    @property
    def rgb_dim(self) -> int | None:
        return None if self.rgb is None else self.rgb.shape[1]

    @property
    def text_dim(self) -> int | None:
        return None if self.text is None else self.text.shape[1]


def load_features(dataset_dir: Path, name: str | None, skeletons: SkeletonCache,
                  need_rgb: bool, need_text: bool) -> FeatureArrays | None:
    """The feature set FAM (`need_rgb`) and FRM (`need_text`) read; None when neither is on."""
    if not (need_rgb or need_text):
        return None
    path = resolve_features(dataset_dir, name)
    try:
        ff = FeatureFile(path, skeletons)
    except CacheError as e:
        raise CacheError(f"{e} (or train the plain backbone with --no-fam --no-frm)") from None
    rgb = rgb_valid = text = text_valid = None
    if need_rgb:
        rgb_valid = ff.block.rgb_valid.astype(bool)
        rgb = np.where(rgb_valid[:, None], ff.block.rgb_pooled.astype(np.float32), 0.0).astype(np.float32)
        _require(rgb.shape[1] > 0 and rgb_valid.any(), path, "rgb/pooled", "FAM", "--no-fam")
    if need_text:
        text_valid = ff.block.text_valid.astype(bool)
        text = np.nan_to_num(ff.text_input.astype(np.float32), nan=0.5, posinf=0.0, neginf=0.0)
        text = np.where(text_valid[:, None], text, 0.0).astype(np.float32)
        _require(text.shape[1] > 0 and text_valid.any(), path, "text/embedding", "FRM", "--no-frm")
    return FeatureArrays(ff.name, path, dict(ff.header.attrs), list(ff.header.questions),
                         rgb, rgb_valid, text, text_valid)


def _require(ok: bool, path: Path, group: str, module: str, flag: str) -> None:
    if not ok:
        raise CacheError(
            f"{path}: no valid {group} for any sample, which {module} needs; extract the features "
            f"with `mmcl extract` (without --skeletons-only), or train without {module} ({flag})")


# --------------------------------------------------------------------------- dataset


class SkeletonDataset(Dataset):
    """Raw sequences of the given cache rows; `repeat` > 1 visits each row that many times."""

    def __init__(self, joints: JointSource | MappedJoints, rows: np.ndarray, labels: np.ndarray,
                 features: FeatureArrays | None = None, repeat: int = 1) -> None:
        self.joints, self.rows, self.labels = joints, np.asarray(rows, np.int64), labels
        self.features, self.repeat = features, repeat

    def __len__(self) -> int:
        return len(self.rows) * self.repeat

    def __getitem__(self, i: int) -> dict:
        row = int(self.rows[i % len(self.rows)])
        item = {"joints": self.joints[row], "label": int(self.labels[row]), "index": row}
        f = self.features
        if f is not None and f.rgb is not None:
            item["rgb"], item["rgb_valid"] = f.rgb[row], bool(f.rgb_valid[row])
        if f is not None and f.text is not None:
            item["text"], item["text_valid"] = f.text[row], bool(f.text_valid[row])
        return item


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    """Pad sequences with zeros to the batch's longest: joints (N, T_max, M, V, 3), length (N,)."""
    lengths = [len(it["joints"]) for it in items]
    joints = np.zeros((len(items), max(lengths), *items[0]["joints"].shape[1:]), np.float32)
    for n, it in enumerate(items):
        joints[n, : lengths[n]] = it["joints"]
    batch = {"joints": torch.from_numpy(joints), "length": torch.tensor(lengths, dtype=torch.long),
             "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
             "index": torch.tensor([it["index"] for it in items], dtype=torch.long)}
    for key in ("rgb", "text"):
        if key in items[0]:
            batch[key] = torch.from_numpy(np.stack([it[key] for it in items]))
            batch[f"{key}_valid"] = torch.tensor([it[f"{key}_valid"] for it in items], dtype=torch.bool)
    return batch


class EpochShuffle(Sampler[int]):
    """A permutation that depends only on (seed, epoch): resuming at epoch e replays it exactly,
    and every process draws the same one (accelerate then gives each its share)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(dataset: SkeletonDataset, batch_size: int, train: bool, workers: int,
                seed: int = 0) -> DataLoader:
    """Training: shuffled per epoch (see EpochShuffle), last partial batch dropped as the
    reference does unless the set is smaller than one batch. Test: in order, all samples."""
    sampler = EpochShuffle(len(dataset), seed) if train else None
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate,
                      drop_last=train and len(dataset) >= batch_size, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())


def default_workers(joints: JointSource | MappedJoints) -> int:
    """In memory a batch is a few slices: worker processes cost more than they save."""
    return 0 if joints.in_memory else min(4, os.cpu_count() or 1)


# --------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class Splits:
    train: np.ndarray
    val: np.ndarray  # empty without --val-split
    test: np.ndarray


def make_splits(skeletons: SkeletonCache, protocol: str, val_split: float = 0.0, seed: int = 0) -> Splits:
    """The protocol's train/test rows; `val_split` of the training rows (per class, seeded) held out."""
    train = skeletons.split_indices(protocol, train=True)
    test = skeletons.split_indices(protocol, train=False)
    if len(train) == 0:
        raise MMCLError(f"{skeletons.path}: protocol {protocol!r} has no training samples")
    val = np.zeros(0, np.int64)
    if val_split > 0:
        rng = np.random.default_rng(seed)
        labels = skeletons.labels[train]
        held = [rng.permutation(train[labels == c])[: int(round(val_split * np.sum(labels == c)))]
                for c in np.unique(labels)]
        val = np.sort(np.concatenate(held)).astype(np.int64)
        if len(val) == 0 or len(val) == len(train):
            raise MMCLError(f"--val-split {val_split} leaves {len(val)} of {len(train)} training "
                            f"samples for validation; choose a fraction that leaves both sides non-empty")
        train = np.setdiff1d(train, val)
    return Splits(train, val, test)


# --------------------------------------------------------------------------- batched augmentation


@dataclass(frozen=True)
class AugmentConfig:
    window: int = 64
    kind: str = "crop-rotate"  # or "ucla-view"
    center: int = 1  # the layout's centre joint (0-based), the origin of every sequence
    crop: tuple[float, float] = (0.5, 1.0)
    test_crop: float = 0.95
    rotate: float = 0.3  # radians
    view_degrees: int = 60  # ucla-view: rotation about x and y, integer degrees
    scale: tuple[float, float] = (0.5, 1.5)  # ucla-view


def random_crops(lengths: torch.Tensor, low: float, high: float, min_frames: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(start, size) per sample: size = floor(L * p), p ~ U[low, high], at least `min_frames`
    and at most L; start uniform over the admissible positions."""
    lengths = lengths.long()
    u = torch.rand((2, len(lengths)), generator=generator, device=lengths.device, dtype=torch.float64)
    p = low + (high - low) * u[0]
    size = torch.minimum((lengths * p).floor().long().clamp(min=min_frames), lengths)
    start = (u[1] * (lengths - size + 1)).floor().long()
    return start, size


def center_crops(lengths: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's test crop: bias = int((1 - p) * L / 2) frames off each end."""
    lengths = lengths.long()
    bias = ((1 - p) * lengths.double() / 2).floor().long()
    return bias, lengths - 2 * bias


def _resize_rows(x: torch.Tensor, start: torch.Tensor, size: torch.Tensor, window: int):
    """The two source frames and the weight of the second for each output frame, as rows of the
    flattened batch: (N*W, ...) a, (N*W, ...) b, (N*W, 1, ...) w. Half-pixel centres, as
    `F.interpolate(..., align_corners=False)`; one index_select each, no per-sample loop."""
    n, t = x.shape[:2]
    dst = torch.arange(window, device=x.device, dtype=torch.float64)
    src = ((dst + 0.5) * (size.double()[:, None] / window) - 0.5).clamp(min=0)  # (N, W)
    i0 = src.floor().long()
    i1 = torch.minimum(i0 + 1, size[:, None] - 1)
    w = (src - i0).to(x.dtype).view(n * window, *([1] * (x.dim() - 2)))
    base = (torch.arange(n, device=x.device) * t + start)[:, None]
    flat = x.reshape(n * t, *x.shape[2:])
    return flat.index_select(0, (base + i0).view(-1)), flat.index_select(0, (base + i1).view(-1)), w


def crop_resize(x: torch.Tensor, start: torch.Tensor, size: torch.Tensor, window: int) -> torch.Tensor:
    """Frames [start, start + size) of each (N, T, ...) sample resized to `window` frames by
    linear interpolation."""
    a, b, w = _resize_rows(x, start, size, window)
    return b.sub_(a).mul_(w).add_(a).view(x.shape[0], window, *x.shape[2:])


def first_frame_origin(x: torch.Tensor, center: int) -> torch.Tensor:
    """(N, 3): joint `center` of actor 1 in its first real (not all-zero) frame; 0 when none.
    Nearly always frame 0, so only the other samples are searched."""
    n = x.shape[0]
    first = torch.zeros(n, dtype=torch.long, device=x.device)
    late = (~x[:, 0, 0].reshape(n, -1).ne(0).any(1)).nonzero().flatten()
    if len(late):
        real = x[late, :, 0].reshape(len(late), x.shape[1], -1).ne(0).any(-1)  # (n_late, T)
        first[late] = real.to(torch.uint8).argmax(1)  # 0 when never real: zeroed below
    origin = x[torch.arange(n, device=x.device), first, 0, center]
    return origin * x[torch.arange(n, device=x.device), first, 0].reshape(n, -1).ne(0).any(1, keepdim=True)


def translated_crop_resize(x: torch.Tensor, center: int, start: torch.Tensor, size: torch.Tensor,
                           window: int) -> torch.Tensor:
    """crop_resize(translate_to_origin_torch(x, center), ...) without rewriting the padded batch.

    Translation subtracts the origin from present frames and leaves absent (all-zero) ones at 0,
    i.e. translate(x) = x - origin * present; resizing is linear in time, so the result is
    resize(x) - origin * resize(present), with presence read off the gathered frames only.
    """
    n, m = x.shape[0], x.shape[2]
    a, b, w = _resize_rows(x, start, size, window)  # (N*W, M, V, 3) each
    pa, pb = (rows.reshape(n * window, m, -1).sum(-1).ne(0).to(x.dtype) for rows in (a, b))
    present = (pa + (pb - pa) * w.view(-1, 1))[..., None, None]  # (N*W, M, 1, 1)
    origin = first_frame_origin(x, center).repeat_interleave(window, 0)[:, None, None, :]
    out = b.sub_(a).mul_(w).add_(a).sub_(origin * present)
    return out.view(n, window, *x.shape[2:])


def rotation_matrices(angles: torch.Tensor) -> torch.Tensor:
    """(N, 3) angles about x, y, z -> (N, 3, 3) R = Rz Ry Rx, as the reference's `_rot`
    (for column vectors: x' = R x)."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(*rows):  # 9 (N,) tensors, row-major
        return torch.stack(rows, dim=-1).view(-1, 3, 3)

    rx = mat(one, zero, zero, zero, c[:, 0], s[:, 0], zero, -s[:, 0], c[:, 0])
    ry = mat(c[:, 1], zero, -s[:, 1], zero, one, zero, s[:, 1], zero, c[:, 1])
    rz = mat(c[:, 2], s[:, 2], zero, -s[:, 2], c[:, 2], zero, zero, zero, one)
    return rz @ ry @ rx


def rotate(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Apply one (3, 3) matrix per sample to every point of (N, ..., 3): x' = R x."""
    r = matrices.to(x.dtype).view(x.shape[0], *([1] * (x.dim() - 2)), 3, 3)
    # Three broadcast multiply-adds into one buffer: faster than a matmul with an inner size of 3.
    out = x[..., 0:1] * r[..., 0]
    return out.addcmul_(x[..., 1:2], r[..., 1]).addcmul_(x[..., 2:3], r[..., 2])


def ucla_view_matrices(agx: torch.Tensor, agy: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """NW-UCLA feeder's `rand_view_transform` as (N, 3, 3) M = Ry Rx S for row vectors: x' = x M."""
    ax, ay = torch.deg2rad(agx.double()), torch.deg2rad(agy.double())
    cx, sx, cy, sy = ax.cos(), ax.sin(), ay.cos(), ay.sin()
    one, zero = torch.ones_like(cx), torch.zeros_like(cx)
    rx = torch.stack([one, zero, zero, zero, cx, sx, zero, -sx, cx], -1).view(-1, 3, 3)
    ry = torch.stack([cy, zero, -sy, zero, one, zero, sy, zero, cy], -1).view(-1, 3, 3)
    return ry @ rx * scale.double()[:, None, None]


def minmax_scale(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Scale each axis of each (N, T, M, V, 3) sample to [-1, 1] over its real joints: valid
    frames (padding excluded) of present persons. An absent person (all zero in a frame, e.g. one
    padded in for a two-person model) stays zero, as everywhere else, and does not stretch the range."""
    n, t = x.shape[:2]
    valid = torch.arange(t, device=x.device)[None] < lengths[:, None]  # (N, T)
    present = x.flatten(3).ne(0).any(-1)  # (N, T, M)
    real = (valid[:, :, None] & present)[..., None, None]
    lo = x.masked_fill(~real, float("inf")).flatten(1, -2).amin(1)  # (N, 3)
    hi = x.masked_fill(~real, float("-inf")).flatten(1, -2).amax(1)
    empty = ~real.flatten(1).any(1, keepdim=True)  # no real joint at all: leave the sample as it is
    lo, hi = lo.masked_fill(empty, 0), hi.masked_fill(empty, 0)
    shape = (n, 1, 1, 1, 3)
    lo, span = lo.view(shape), (hi - lo).clamp(min=1e-6).view(shape)
    return ((x - lo) / span * 2 - 1) * present[..., None, None]


def ucla_frame_indices(lengths: torch.Tensor, window: int, train: bool,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, window) frame indices: sorted random draws (train; the reference samples from 100
    copies of every index, close to drawing with replacement) or evenly spaced (test)."""
    lengths = lengths.long()
    if train:
        u = torch.rand((len(lengths), window), generator=generator, device=lengths.device,
                       dtype=torch.float64)
        return (u * lengths[:, None]).floor().long().sort(dim=1).values
    steps = torch.linspace(0, 1, window, device=lengths.device, dtype=torch.float64)
    return (steps[None] * (lengths[:, None] - 1)).floor().long()


class BatchAugment:
    """Padded raw batch (N, T_max, M, V, 3) + lengths -> (N, window, M, V, 3) on its device."""

    def __init__(self, cfg: AugmentConfig, train: bool) -> None:
        if cfg.kind not in ("crop-rotate", "ucla-view"):
            raise MMCLError(f"unknown augmentation {cfg.kind!r}")
        self.cfg, self.train = cfg, train

    def __call__(self, joints: torch.Tensor, lengths: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x, lengths = joints.float(), lengths.to(joints.device)
        if self.cfg.kind == "ucla-view":
            return self._ucla(translate_to_origin_torch(x, self.cfg.center), lengths, generator)
        return self._crop_rotate(x, lengths, generator)

    def _crop_rotate(self, x, lengths, generator):
        cfg = self.cfg
        if self.train:
            start, size = random_crops(lengths, *cfg.crop, min_frames=cfg.window, generator=generator)
        else:
            start, size = center_crops(lengths, cfg.test_crop)
        x = translated_crop_resize(x, cfg.center, start, size, cfg.window)
        if self.train and cfg.rotate > 0:
            u = torch.rand((len(x), 3), generator=generator, device=x.device)
            angles = (2 * u - 1) * cfg.rotate
            x = rotate(x, rotation_matrices(angles))
        return x

    def _ucla(self, x, lengths, generator):
        cfg, n = self.cfg, len(x)
        if self.train:
            deg = torch.randint(-cfg.view_degrees, cfg.view_degrees + 1, (2, n), generator=generator,
                                device=x.device)
            lo, hi = cfg.scale
            s = lo + (hi - lo) * torch.rand(n, generator=generator, device=x.device, dtype=torch.float64)
            m = ucla_view_matrices(deg[0], deg[1], s).to(x.dtype)
            x = torch.einsum("npj,nji->npi", x.reshape(n, -1, 3), m).reshape(x.shape)
        x = minmax_scale(x, lengths)
        idx = ucla_frame_indices(lengths, cfg.window, self.train, generator)
        return x[torch.arange(n, device=x.device)[:, None], idx]


# --------------------------------------------------------------------------- model input


class InputPipeline:
    """A collated batch -> the network's (N, C, window, V, M) input in the chosen stream."""

    def __init__(self, cfg: AugmentConfig, train: bool, stream: str, layout: Layout) -> None:
        self.augment, self.stream, self.layout = BatchAugment(cfg, train), canonical_stream(stream), layout

    def __call__(self, batch: dict[str, torch.Tensor],
                 generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.augment(batch["joints"], batch["length"], generator)
        return to_model_input(make_stream(x, self.stream, self.layout))
