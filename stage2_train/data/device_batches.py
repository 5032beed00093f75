"""Training batches drawn from a cache held whole on the training device (`--data-on-device`).

The frames of the training rows live in one ragged (sum T, M, V, 3) tensor on the device, with
their labels and features; each step gathers a padded batch there with one index. No DataLoader,
no worker processes and no host-to-device copy of frames per step: what a GPU wants when the
cache fits beside the model (NTU RGB+D 120: about 2 GB of frames). The batches are exactly
`make_loader(train=True)` + `collate`'s: the same `EpochShuffle` order, the same zero padding.
"""

from __future__ import annotations

import numpy as np
import torch

from .dataset import EpochShuffle, SkeletonDataset


class DeviceBatches:
    """An epoch of padded training batches, like a prepared DataLoader: `set_epoch`, `len`, and
    iteration. With several processes each takes its contiguous share of every global batch, as
    accelerate's `split_batches` does."""

    def __init__(self, dataset: SkeletonDataset, batch_size: int, seed: int, device: torch.device,
                 process_index: int = 0, num_processes: int = 1) -> None:
        rows = dataset.rows
        seqs = [dataset.joints[int(r)] for r in rows]
        self.lengths = np.array([len(s) for s in seqs], np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.frames = torch.from_numpy(np.concatenate(seqs)).to(device)
        del seqs
        self.rows, self.device = torch.from_numpy(rows).to(device), device
        self.labels = torch.from_numpy(np.asarray(dataset.labels[rows], np.int64)).to(device)
        self.extras: dict[str, torch.Tensor] = {}  # rgb, text and their valid flags, per position
        f = dataset.features
        for key in ("rgb", "text"):
            values = getattr(f, key, None) if f is not None else None
            if values is not None:
                self.extras[key] = torch.from_numpy(np.asarray(values[rows])).to(device)
                self.extras[f"{key}_valid"] = torch.from_numpy(np.asarray(getattr(f, f"{key}_valid")[rows])).to(device)
        self.n, self.batch_size = len(dataset), batch_size
        self.drop_last = self.n >= batch_size  # as make_loader: a set smaller than a batch still trains
        self.sampler = EpochShuffle(self.n, seed)
        if batch_size % num_processes:
            raise ValueError(f"batch size {batch_size} does not split over {num_processes} processes")
        self.share = slice(process_index * (batch_size // num_processes),
                           (process_index + 1) * (batch_size // num_processes))

    @property
    def nbytes(self) -> int:
        return self.frames.nbytes + sum(t.nbytes for t in self.extras.values())

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self):
        order = np.fromiter(self.sampler, np.int64, self.n) % len(self.lengths)  # dataset index -> position
        for b in range(len(self)):
            yield self.batch(order[b * self.batch_size:(b + 1) * self.batch_size][self.share])

    def batch(self, positions: np.ndarray) -> dict[str, torch.Tensor]:
        """`collate` of these positions, gathered on the device: joints (N, T_max, M, V, 3) padded
        with zeros, length, label, index (the cache row) and the features."""
        lengths = self.lengths[positions]
        t = np.arange(lengths.max())
        frame = self.starts[positions, None] + np.minimum(t, lengths[:, None] - 1)  # (N, T_max)
        present = torch.from_numpy(t < lengths[:, None]).to(self.device, non_blocking=True)
        joints = self.frames[torch.from_numpy(frame).to(self.device, non_blocking=True)]
        joints = torch.where(present[:, :, None, None, None], joints, 0.0)
        p = torch.from_numpy(positions).to(self.device, non_blocking=True)
        batch = {"joints": joints, "length": torch.from_numpy(lengths).to(self.device, non_blocking=True),
                 "label": self.labels[p], "index": self.rows[p]}
        return batch | {key: values[p] for key, values in self.extras.items()}
