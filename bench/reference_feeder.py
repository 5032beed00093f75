"""The reference's data path, ported for the benchmarks: CTR-GCN's padded-npz NTU feeder
(per-sample crop + resize with F.interpolate, then one random rotation) and its NW-UCLA feeder
(per-sample view change, min-max scaling, random frame draw), plus the NTU-like data both the
reference and our cache hold.

Behaviour follows CTR-GCN's `feeders/feeder_ntu.py`, `feeders/feeder_ucla.py` and
`feeders/tools.py` (valid_crop_resize, random_rot); written here from their description, not
copied. Used by bench_data.py and bench_train_step.py only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from shared.cache_schema import SKELETON_FILE, SkeletonCacheWriter
from shared.dataset_spec import SampleMeta
from shared.registry import NTU60, NW_UCLA

PADDED_T, M, V = 300, 2, 25  # the reference's NTU npz: (N, 300, 2 * 25 * 3)


# --------------------------------------------------------------------------- NTU-like data


def ntu_like_samples(n: int, seed: int = 0, frames=(32, 301)) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` (T, 2, 25, 3) float32 sequences, T uniform in `frames`, the second actor absent in half
    of them (NTU's one-person classes), and labels in 0..59."""
    rng = np.random.default_rng(seed)
    samples = []
    for t in rng.integers(*frames, n):
        body = rng.normal(0, 0.3, (1, 1, V, 3)) + np.array([0.2, 0.1, 3.0])
        walk = np.cumsum(rng.normal(0, 0.01, (int(t), M, V, 3)), axis=0)
        x = (body + walk).astype(np.float32)
        if rng.random() < 0.5:
            x[:, 1] = 0
        samples.append(x)
    return samples, rng.integers(0, 60, n)


def write_ntu_like_cache(folder: Path, samples: list[np.ndarray], labels: np.ndarray) -> Path:
    """Our cache of the samples (as `mmcl extract` writes it); all are training samples of xsub."""

    def meta(i: int, label: int) -> SampleMeta:
        setup, rep = 1 + i // 900, 1 + i % 900  # a unique NTU name per sample
        return SampleMeta(
            f"S{setup:03d}C001P001R{rep:03d}A{label + 1:03d}",
            label + 1,
            subject=1,
            camera=1,
            setup=setup,
            replication=rep,
        )

    return _write_cache(folder, NTU60, samples, labels, meta)


def ucla_like_samples(n: int, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """`n` (T, 1, 20, 3) NW-UCLA-like sequences (T in [20, 200]) and labels in 0..9."""
    rng = np.random.default_rng(seed)
    samples = [
        (rng.normal(0, 0.3, (1, 1, 20, 3)) + np.cumsum(rng.normal(0, 0.01, (int(t), 1, 20, 3)), 0)).astype(np.float32)
        for t in rng.integers(20, 201, n)
    ]
    return samples, rng.integers(0, 10, n)


def write_ucla_like_cache(folder: Path, samples: list[np.ndarray], labels: np.ndarray) -> Path:
    """Our NW-UCLA cache of the samples, all training samples of view3 (views 1 and 2)."""
    actions = [c.action for c in NW_UCLA.classes]

    def meta(i: int, label: int) -> SampleMeta:
        a, view, e = actions[label], 1 + i % 2, i // 2
        return SampleMeta(f"a{a:02d}_s01_e{e:03d}_v{view:02d}", a, subject=1, camera=view, replication=e)

    return _write_cache(folder, NW_UCLA, samples, labels, meta)


def _write_cache(folder: Path, spec, samples, labels, meta) -> Path:
    with SkeletonCacheWriter(folder / SKELETON_FILE, spec, "/generated") as w:
        for i, (x, label) in enumerate(zip(samples, labels)):
            w.append(meta(i, int(label)), x, np.arange(len(x), dtype=np.int32))
    return folder


def write_reference_npz(path: Path, samples: list[np.ndarray], labels: np.ndarray) -> Path:
    """The reference's NTU60_CS.npz layout: x_train (N, 300, 150) zero-padded, y_train one-hot."""
    x = np.zeros((len(samples), PADDED_T, M * V * 3), np.float32)
    for i, s in enumerate(samples):
        x[i, : len(s)] = s[:PADDED_T].reshape(len(s), -1)
    y = np.eye(60, dtype=np.float32)[labels]
    np.savez(path, x_train=x, y_train=y, x_test=x[:1], y_test=y[:1])
    return path


# --------------------------------------------------------------------------- NTU feeder


def valid_crop_resize(data: np.ndarray, valid: int, p_interval, window: int) -> np.ndarray:
    """(C, T, V, M) -> (C, window, V, M): a random (train) or centre (test) crop of the valid
    frames, resized by bilinear interpolation over (C*V*M, frames)."""
    c, _, v, m = data.shape
    if len(p_interval) == 1:
        bias = int((1 - p_interval[0]) * valid / 2)
        crop = data[:, bias : valid - bias]
    else:
        p = np.random.rand() * (p_interval[1] - p_interval[0]) + p_interval[0]
        size = np.minimum(np.maximum(int(np.floor(valid * p)), 64), valid)
        bias = np.random.randint(0, valid - size + 1)
        crop = data[:, bias : bias + size]
    length = crop.shape[1]
    x = torch.tensor(crop, dtype=torch.float).permute(0, 2, 3, 1).contiguous().view(c * v * m, length)
    x = F.interpolate(x[None, None], size=(c * v * m, window), mode="bilinear", align_corners=False)
    x = x.squeeze().contiguous().view(c, v, m, window).permute(0, 3, 1, 2).contiguous()
    return x.numpy()


def rotation(theta: float = 0.3) -> torch.Tensor:
    """Rz @ Ry @ Rx, each angle uniform in [-theta, theta]."""
    a = torch.zeros(3).uniform_(-theta, theta)
    c, s = a.cos(), a.sin()
    rx = torch.tensor([[1, 0, 0], [0, c[0], s[0]], [0, -s[0], c[0]]])
    ry = torch.tensor([[c[1], 0, -s[1]], [0, 1, 0], [s[1], 0, c[1]]])
    rz = torch.tensor([[c[2], s[2], 0], [-s[2], c[2], 0], [0, 0, 1]])
    return rz @ ry @ rx


def random_rot(data: np.ndarray, theta: float = 0.3) -> np.ndarray:
    """(C, T, V, M): every frame's points times one random rotation."""
    x = torch.from_numpy(data)
    c, t, v, m = x.shape
    x = x.permute(1, 0, 2, 3).contiguous().view(t, c, v * m)
    x = torch.matmul(rotation(theta), x)
    return x.view(t, c, v, m).permute(1, 0, 2, 3).contiguous().numpy()


class ReferenceNTUFeeder(Dataset):
    """The reference's training feeder over its npz: the whole padded array in memory."""

    def __init__(self, npz: Path, window: int = 64, p_interval=(0.5, 1.0)) -> None:
        f = np.load(npz)
        x = f["x_train"]
        n, t, _ = x.shape
        self.data = x.reshape((n, t, 2, 25, 3)).transpose(0, 4, 1, 3, 2)  # N, C, T, V, M (a view)
        self.label = np.where(f["y_train"] > 0)[1]
        self.window, self.p_interval = window, p_interval

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, index: int):
        data = np.array(self.data[index])
        valid = int(np.sum(data.sum(0).sum(-1).sum(-1) != 0))
        data = random_rot(valid_crop_resize(data, valid, self.p_interval, self.window))
        return data, int(self.label[index]), index


# --------------------------------------------------------------------------- NW-UCLA feeder


class ReferenceUCLAFeeder(Dataset):
    """The reference's NW-UCLA training feeder over (T, 20, 3) sequences: a random view change,
    min-max scaling to [-1, 1], then `window` frames drawn at random (sorted) from 100 copies of
    each index."""

    def __init__(self, samples: list[np.ndarray], labels: np.ndarray, window: int = 52) -> None:
        self.samples, self.labels, self.window = samples, labels, window

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        x = self.samples[index].reshape(-1, 3)
        ax, ay = np.deg2rad(np.random.randint(-60, 61, 2))
        s = np.random.uniform(0.5, 1.5)
        rx = np.array([[1, 0, 0], [0, np.cos(ax), np.sin(ax)], [0, -np.sin(ax), np.cos(ax)]])
        ry = np.array([[np.cos(ay), 0, -np.sin(ay)], [0, 1, 0], [np.sin(ay), 0, np.cos(ay)]])
        x = x @ (ry @ rx @ np.diag([s, s, s]))
        lo, hi = x.min(0), x.max(0)
        x = ((x - lo) / np.maximum(hi - lo, 1e-6) * 2 - 1).reshape(self.samples[index].shape)
        pool = np.repeat(np.arange(len(x)), 100)
        idx = np.sort(np.random.choice(pool, self.window, replace=False))
        out = x[idx].astype(np.float32)  # (W, V, 3)
        return out.transpose(2, 0, 1)[..., None], int(self.labels[index]), index  # C, T, V, M=1
