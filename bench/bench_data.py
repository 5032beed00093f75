"""Data pipeline throughput at NTU shape: batched torch augmentation vs per-sample numpy.

Raw sequences of 32-300 frames x 2 persons x 25 joints (NTU's range), batch 64, window 64, on the
CPU. Three ways to make one training batch:

  batched    stage2_train: collate (pad) + BatchAugment on the whole batch (translate, random
             crop, linear resize, rotation), as the training loop does
  numpy      the reference feeder's work per sample in numpy (translate, crop, resize, rotate),
             then stacked
  reference  CTR-GCN's feeder code path per sample (F.interpolate on one sample, torch `_rot`)

Usage: python bench/bench_data.py [--batches 30] [--threads N] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from shared.layouts import NTU25
from shared.normalization import translate_to_origin
from stage2_train.dataset import collate
from stage2_train.transforms import AugmentConfig, BatchAugment

WINDOW, BATCH, M, V = 64, 64, 2, 25


def make_samples(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=(int(t), M, V, 3)).astype(np.float32) for t in rng.integers(32, 301, n)]


# --------------------------------------------------------------------------- per-sample numpy


def numpy_rotation(rng: np.random.Generator, theta: float = 0.3) -> np.ndarray:
    (c0, c1, c2), (s0, s1, s2) = np.cos(a := rng.uniform(-theta, theta, 3)), np.sin(a)
    rx = np.array([[1, 0, 0], [0, c0, s0], [0, -s0, c0]])
    ry = np.array([[c1, 0, -s1], [0, 1, 0], [s1, 0, c1]])
    rz = np.array([[c2, s2, 0], [-s2, c2, 0], [0, 0, 1]])
    return (rz @ ry @ rx).astype(np.float32)


def numpy_augment(sample: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One (T, M, V, 3) sample -> (WINDOW, M, V, 3): the reference feeder's steps in numpy."""
    x = translate_to_origin(sample, NTU25.center)
    t = len(x)
    size = min(max(int(np.floor(t * rng.uniform(0.5, 1.0))), WINDOW), t)
    start = rng.integers(0, t - size + 1)
    src = np.maximum((np.arange(WINDOW) + 0.5) * size / WINDOW - 0.5, 0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, size - 1)
    w = (src - i0).astype(np.float32)[:, None, None, None]
    crop = x[start:start + size]
    x = (1 - w) * crop[i0] + w * crop[i1]
    return x @ numpy_rotation(rng).T


# --------------------------------------------------------------------------- the reference code path


def reference_augment(sample: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """feeder_ntu.__getitem__: valid_crop_resize (F.interpolate per sample) then random_rot."""
    data = translate_to_origin(sample, NTU25.center).transpose(3, 0, 2, 1)  # C, T, V, M
    c, t, v, m = data.shape
    size = min(max(int(np.floor(t * rng.uniform(0.5, 1.0))), WINDOW), t)
    start = rng.integers(0, t - size + 1)
    x = torch.tensor(data[:, start:start + size], dtype=torch.float)
    x = x.permute(0, 2, 3, 1).contiguous().view(c * v * m, size)[None, None]
    x = F.interpolate(x, size=(c * v * m, WINDOW), mode="bilinear", align_corners=False).squeeze()
    x = x.contiguous().view(c, v, m, WINDOW).permute(0, 3, 1, 2).contiguous()
    rot = torch.from_numpy(numpy_rotation(rng))
    x = torch.matmul(rot, x.permute(1, 0, 2, 3).reshape(WINDOW, c, v * m))
    return x.view(WINDOW, c, v, m).permute(1, 0, 2, 3).numpy()


# --------------------------------------------------------------------------- timing


def rate(fn, batches: list[list[np.ndarray]], sync=lambda: None) -> float:
    """Samples/s from the median batch time: robust to other processes on a shared machine."""
    fn(batches[0])  # warm-up
    times = []
    for b in batches:
        start = time.perf_counter()
        fn(b)
        sync()
        times.append(time.perf_counter() - start)
    return BATCH / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu", help="where the batched augmentation runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    batches = [make_samples(BATCH, rng) for _ in range(args.batches)]
    augment = BatchAugment(AugmentConfig(window=WINDOW), train=True, center=NTU25.center)
    generator = torch.Generator(device).manual_seed(0)

    def collated(samples):
        return collate([{"joints": s, "label": 0, "index": 0} for s in samples])

    def batched(samples):
        b = collated(samples)
        return augment(b["joints"].to(device), b["length"].to(device), generator)

    def per_sample(fn):
        return lambda samples: np.stack([fn(s, rng) for s in samples])

    ready = [collated(b) for b in batches]
    augment_only = iter(ready * 2)
    results = {
        f"batched torch: collate + BatchAugment ({device.type})": rate(batched, batches, sync),
        "  of which collate (pad to the longest)": rate(collated, batches),
        f"  of which BatchAugment ({device.type})": rate(
            lambda _: (b := next(augment_only), augment(b["joints"].to(device), b["length"].to(device), generator)),
            batches, sync),
        "per-sample numpy (translate, crop, resize, rotate)": rate(per_sample(numpy_augment), batches),
        "per-sample reference (F.interpolate + _rot)": rate(per_sample(reference_augment), batches),
    }
    print(f"NTU shape: T in [32, 300], M={M}, V={V}, batch {BATCH}, window {WINDOW}; {args.batches} batches, "
          f"median batch time; {args.threads} torch thread(s)")
    base = results["per-sample numpy (translate, crop, resize, rotate)"]
    for name, r in results.items():
        print(f"  {name:52s} {r:9.0f} samples/s   x{r / base:.2f} vs per-sample numpy")


if __name__ == "__main__":
    main()
