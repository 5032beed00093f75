"""Training data throughput and memory: the reference's padded-npz feeder against our cache.

On the same 3,000 NTU-like samples (T uniform in [32, 300], 2 persons x 25 joints; the second
actor absent in half), one training epoch of batch-64 model inputs (3 x 64 x 25 x 2, crop +
resize + rotation) with 0, 2 and 4 DataLoader workers:

  reference  CTR-GCN's feeder: the padded (N, 300, 150) npz in memory, per-sample augmentation
             in the workers
  ours       stage2_train's default: JointSource holds every frame in one contiguous array
             (ragged, no padding) that the forked workers share (no per-worker copy); slices +
             collate in the workers, BatchAugment on the whole batch in the training process
  ours-lazy  the same reading each sample from skeletons.h5 (`in_memory: false`, for caches that
             do not fit): least memory, speed bound by the cache's HDF5 chunking

Each measurement runs in a fresh process, the implementations interleaved per round. Speed is
samples/s from the first batch to the last (worker start-up excluded). Memory is the peak,
above the process's own footprint after its imports, of the process tree's PSS (proportional
set size: a page shared by k processes counts 1/k in each, so pages the forked workers share
are counted once; summed RSS, which counts them once per worker, is printed beside it).

Usage: python bench/bench_data.py [--samples 3000] [--workers 0,2,4] [--rounds 2] [--threads 1]
Ends with RESULT lines: speed and memory of ours (in memory, the default) and ours-lazy
against the reference, the last one `RESULT data memory ours/reference ...`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BATCH, WINDOW = 64, 64
IMPLS = ("reference", "ours", "ours-lazy")


# --------------------------------------------------------------------------- one measurement


class PeakMemory:
    """Polls the process tree's summed PSS and RSS (bytes) in a thread; keeps the peaks."""

    def __init__(self, interval: float = 0.02) -> None:
        import psutil

        self.proc, self.interval = psutil.Process(), interval
        self.base_pss, self.base_rss = self.now()
        self.peak_pss, self.peak_rss = self.base_pss, self.base_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> tuple[int, int]:
        pss = rss = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                info = p.memory_full_info()
            except Exception:  # a worker that just exited
                continue
            pss, rss = pss + info.pss, rss + info.rss
        return pss, rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            pss, rss = self.now()
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def reference_batches(folder: Path, workers: int):
    import torch

    from reference_feeder import ReferenceNTUFeeder

    loader = torch.utils.data.DataLoader(
        ReferenceNTUFeeder(folder / "ntu_like.npz", WINDOW),
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
    )
    for x, label, _ in loader:
        yield x


def our_batches(folder: Path, workers: int, in_memory: bool | None):
    import torch

    from shared.cache_schema import SkeletonCache
    from shared.layouts import NTU25
    from stage2_train.data.augment_config import AugmentConfig
    from stage2_train.data.dataset import JointSource, SkeletonDataset, make_loader
    from stage2_train.data.transforms import InputPipeline

    cache = SkeletonCache(folder / "ntu60")
    dataset = SkeletonDataset(JointSource(cache, in_memory), np.arange(len(cache)), cache.labels)
    loader = make_loader(dataset, BATCH, train=True, workers=workers, seed=0)
    pipeline = InputPipeline(AugmentConfig(window=WINDOW), True, "joint", NTU25)
    generator = torch.Generator().manual_seed(0)
    for batch in loader:
        yield pipeline(batch, generator)


def child(impl: str, workers: int, folder: Path, threads: int) -> None:
    import torch

    import stage2_train.training.train  # noqa: F401  the training process's imports belong to the baseline

    torch.set_num_threads(threads)
    with PeakMemory() as mem:
        batches = (
            reference_batches(folder, workers)
            if impl == "reference"
            else our_batches(folder, workers, in_memory=False if impl == "ours-lazy" else None)
        )
        shape = tuple(next(batches).shape)
        start, n = time.perf_counter(), 0
        for x in batches:
            n += len(x)
        elapsed = time.perf_counter() - start
    print(
        json.dumps(
            {
                "samples_s": n / elapsed,
                "pss_mib": (mem.peak_pss - mem.base_pss) / 2**20,
                "rss_mib": (mem.peak_rss - mem.base_rss) / 2**20,
                "shape": shape,
            }
        )
    )


# --------------------------------------------------------------------------- the comparison


def make_data(folder: Path, n: int) -> None:
    from reference_feeder import ntu_like_samples, write_ntu_like_cache, write_reference_npz

    samples, labels = ntu_like_samples(n)
    write_ntu_like_cache(folder / "ntu60", samples, labels)
    write_reference_npz(folder / "ntu_like.npz", samples, labels)
    frames = sum(len(s) for s in samples)
    print(
        f"{n} NTU-like samples, {frames} frames (mean T {frames / n:.0f}); skeletons.h5 "
        f"{(folder / 'ntu60' / 'skeletons.h5').stat().st_size / 2**20:.0f} MiB, reference npz "
        f"{(folder / 'ntu_like.npz').stat().st_size / 2**20:.0f} MiB",
        flush=True,
    )


def measure(impl: str, workers: int, folder: Path, threads: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", impl, str(workers), str(folder), str(threads)],
        capture_output=True,
        text=True,
    )
    if out.returncode:
        sys.exit(f"{impl} with {workers} workers failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{np.median(values):.2f} (spread {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--workers", default="0,2,4")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        impl, workers, folder, threads = args.child
        return child(impl, int(workers), Path(folder), int(threads))
    workers = [int(w) for w in args.workers.split(",")]
    results: dict[tuple[str, int], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        make_data(Path(tmp), args.samples)
        for r in range(args.rounds):
            for w in workers:
                for impl in IMPLS:
                    m = measure(impl, w, Path(tmp), args.threads)
                    results.setdefault((impl, w), []).append(m)
                    print(
                        f"round {r + 1} {impl:9s} workers {w}: {m['samples_s']:7.0f} samples/s, peak PSS "
                        f"+{m['pss_mib']:5.0f} MiB (summed RSS +{m['rss_mib']:5.0f} MiB)",
                        flush=True,
                    )
    print(
        f"\nbatch {BATCH}, window {WINDOW}, {args.threads} torch thread(s) per process; medians over "
        f"{args.rounds} round(s)"
    )
    speed, memory, lazy_speed, lazy_memory = [], [], [], []
    for w in workers:
        for impl in IMPLS:
            ms = results[(impl, w)]
            print(
                f"  workers {w} {impl:9s} {np.median([m['samples_s'] for m in ms]):7.0f} samples/s   "
                f"PSS +{np.median([m['pss_mib'] for m in ms]):5.0f} MiB   "
                f"summed RSS +{np.median([m['rss_mib'] for m in ms]):5.0f} MiB"
            )
        for ours, ref in zip(results[("ours", w)], results[("reference", w)]):
            speed.append(ours["samples_s"] / ref["samples_s"])
            memory.append(ours["pss_mib"] / ref["pss_mib"])
        for lazy, ref in zip(results[("ours-lazy", w)], results[("reference", w)]):
            lazy_speed.append(lazy["samples_s"] / ref["samples_s"])
            lazy_memory.append(lazy["pss_mib"] / ref["pss_mib"])
    print(f"RESULT data speed ours/reference {spread(speed)}")
    print(f"RESULT data speed ours-lazy/reference {spread(lazy_speed)}")
    print(f"RESULT data memory ours-lazy/reference {spread(lazy_memory)}")
    print(f"RESULT data memory ours/reference {spread(memory)}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
