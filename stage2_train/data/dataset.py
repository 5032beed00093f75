"""Stage 2's samples: cached skeleton frames -> raw per-sample sequences -> padded batches.

`JointSource` reads every sample's frames (in memory when they fit, else per sample from HDF5);
`MappedJoints` shows them in another skeleton layout (see `input_layout`). `SkeletonDataset`
slices raw variable-length sequences (T, M, V, 3) with their label and features; `collate` pads
them to the batch's longest; `EpochShuffle` orders each training epoch from (seed, epoch) only.
`make_splits` gives the protocol's train/val/test rows. Augmentation happens later, on whole
batches (`transforms`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from shared.cache_schema import SkeletonCache
from shared.cache_schema.digest import damaged_reads
from shared.errors import MMCLError
from shared.layouts import LayoutMap, pad_persons

from .features import FeatureArrays

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
            self._joints = read_slabs(self.path, "skeleton/joints")

    def __getitem__(self, row: int) -> np.ndarray:
        if self._joints is None:  # opened lazily: h5py handles do not survive a fork
            self._file = h5py.File(self.path, "r")
            self._joints = self._file["skeleton/joints"]
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        with damaged_reads(self.path, "its frames"):  # a bad chunk fails its fletcher32 check
            return np.asarray(self._joints[a:b], dtype=np.float32)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if not self.in_memory:
            state["_file"] = state["_joints"] = None
        return state


def read_slabs(path, name: str, slab: int = 8192) -> np.ndarray:
    """A whole dataset into one contiguous array (the only copy: forked DataLoader workers share
    its pages), read `slab` rows at a time: reading a compressed dataset at once costs HDF5 about
    two thirds of the array again at peak (290 MiB of NTU-like frames: 486 MiB, in slabs 314)."""
    with damaged_reads(path, "its frames"), h5py.File(path, "r") as f:  # a bad chunk fails its fletcher32 check
        ds = f[name]
        out = np.empty(ds.shape, ds.dtype)
        for a in range(0, len(out), slab):
            ds.read_direct(out, np.s_[a:a + slab], np.s_[a:a + slab])
    return out


def fits_in_memory(nbytes: int, share: float = 0.5) -> bool:
    """True when `nbytes` is below `share` of the memory available now."""
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return False
    return nbytes < share * available


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
