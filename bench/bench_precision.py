"""Whole training epochs in float32 against bf16 autocast, on this machine: the figure behind
`--mixed-precision`'s help and the README's precision lines.

Each run is the real `mmcl train` command (CTR-GCN, FAM and FRM off, DataLoader, augmentation,
optimiser, evaluation after the last epoch) on a generated cache, one fresh process per run; the
speed is `samples_per_s` of its `metrics.jsonl`, i.e. samples over the wall time of a full epoch
including data loading. Runs alternate float32 / bf16 over `--rounds` rounds, so both precisions
see the same machine load; the ratio is bf16's samples/s over float32's, per round.

  ucla16   NW-UCLA-like (3 x 52 x 20 x 1, 10 classes), batch 16: the official short-budget recipe's shape
  ntu64    NTU-like (3 x 64 x 25 x 2, 60 classes), batch 64: MMCL's NTU shape at a CPU-sized batch

The ratio depends on the CPU: bf16 is fast only where it is native (AVX512-BF16 or AMX); the
script prints what this CPU has. Usage:
  python bench/bench_precision.py [--rounds 3] [--samples 320] [--epochs 2] [--configs ucla16,ntu64]
Ends with `RESULT train-epoch bf16/float32 <ratio> (spread <min>-<max>)`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_feeder import _write_cache, ntu_like_samples, ucla_like_samples  # noqa: E402
from shared.dataset_spec import SampleMeta  # noqa: E402
from shared.registry import NTU60, NW_UCLA  # noqa: E402

PRECISIONS = ("no", "bf16")  # --mixed-precision values: float32, bf16 autocast
CONFIGS = {"ucla16": (16, 52), "ntu64": (64, 64)}  # name: (batch, window)


def ucla_cache(folder: Path, n: int) -> Path:
    """n training samples (views 1, 2) and n // 2 test samples (view 3) of NW-UCLA's shape."""
    samples, labels = ucla_like_samples(n + n // 2)
    actions = [c.action for c in NW_UCLA.classes]

    def meta(i: int, label: int) -> SampleMeta:
        view = 1 + i % 2 if i < n else 3
        return SampleMeta(
            f"a{actions[label]:02d}_s01_e{i:03d}_v{view:02d}", actions[label], subject=1, camera=view, replication=i
        )

    return _write_cache(folder, NW_UCLA, samples, labels, meta)


def ntu_cache(folder: Path, n: int) -> Path:
    """n X-Sub training samples (subject 1) and n // 2 test samples (subject 3) of NTU's shape."""
    samples, labels = ntu_like_samples(n + n // 2)

    def meta(i: int, label: int) -> SampleMeta:
        subject = 1 if i < n else 3
        return SampleMeta(
            f"S001C001P{subject:03d}R{i + 1:03d}A{label + 1:03d}",
            label + 1,
            subject=subject,
            camera=1,
            setup=1,
            replication=i + 1,
        )

    return _write_cache(folder, NTU60, samples, labels, meta)


def run(cache: Path, work: Path, precision: str, batch: int, window: int, epochs: int, threads: int) -> float:
    """Samples/s of the last epoch of one `mmcl train` run in a fresh process."""
    cmd = [
        sys.executable,
        "-c",
        "from mmcl.cli import main; main()",
        "train",
        "--cache",
        str(cache),
        "--work-dir",
        str(work),
        "--no-fam",
        "--no-frm",
        "--recipe",
        "ctrgcn",
        "--epochs",
        str(epochs),
        "--warmup",
        "0",
        "--steps",
        str(epochs + 1),
        "--batch-size",
        str(batch),
        "--window",
        str(window),
        "--seed",
        "1",
        "--workers",
        "0",
        "--mixed-precision",
        precision,
        "--device",
        "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    epochs_logged = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    return float(epochs_logged[-1]["samples_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=320, help="training samples per cache")
    parser.add_argument("--epochs", type=int, default=2, help="per run; the last epoch is timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default="ucla16")
    args = parser.parse_args()
    names = args.configs.split(",")
    print(
        f"CPU bf16: AVX512-BF16 {torch.cpu._is_avx512_bf16_supported()}, AMX {torch.cpu._is_amx_tile_supported()}; "
        f"{args.threads} threads, {args.samples} training samples, {args.epochs} epochs a run, "
        f"{args.rounds} rounds",
        flush=True,
    )
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        caches = {
            "ucla16": lambda: ucla_cache(tmp / "ucla", args.samples),
            "ntu64": lambda: ntu_cache(tmp / "ntu", args.samples),
        }
        for name in names:
            cache, (batch, window) = caches[name](), CONFIGS[name]
            speeds: dict[str, list[float]] = {p: [] for p in PRECISIONS}
            for r in range(args.rounds):
                for p in PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]:
                    speeds[p].append(run(cache, tmp / f"{name}-{p}-{r}", p, batch, window, args.epochs, args.threads))
                ratio = speeds["bf16"][-1] / speeds["no"][-1]
                ratios.append(ratio)
                print(
                    f"{name} round {r + 1}: float32 {speeds['no'][-1]:.1f} samples/s, "
                    f"bf16 {speeds['bf16'][-1]:.1f} samples/s, bf16/float32 {ratio:.2f}",
                    flush=True,
                )
            print(
                f"{name}: float32 {statistics.median(speeds['no']):.1f}, "
                f"bf16 {statistics.median(speeds['bf16']):.1f} samples/s (medians)",
                flush=True,
            )
    print(
        f"RESULT train-epoch bf16/float32 {statistics.median(ratios):.2f} (spread {min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
