"""Per-image CPU time of stage 1's models: EfficientNet-Lite0, MiniLM, the tiny demo MLLM.

    python bench/bench_stage1_models.py [--threads N] [--images 16] [--batch 8]

Inputs are temporal-image-sized (5 crops of 224 x 448 side by side, 1120 x 448). Prints ms per image
(per text for MiniLM), best of --repeat runs after one warm-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image


def best_of(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up: lazy initialisation, allocator
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from stage1_extract.demo.models import build_demo_models
    from stage1_extract.mllm_factory import build_mllm
    from stage1_extract.prompts import load_prompts
    from stage1_extract.rgb_encoders import build_rgb_encoder
    from stage1_extract.text_encoder import TextEncoder

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (448, 1120, 3), dtype=np.uint8)) for _ in range(args.images)]
    texts = [f"A person raises the left hand above the head, time {i}." for i in range(args.images)]
    n = args.images
    print(f"CPU, {args.threads} thread(s), {n} images of 1120x448, batch {args.batch}")

    rgb = build_rgb_encoder("efficientnet-lite0", batch_size=args.batch)
    print(f"efficientnet-lite0 encode:    {1000 * best_of(lambda: rgb.encode(images), args.repeat) / n:8.1f} ms/image")

    text = TextEncoder(batch_size=args.batch)
    print(f"all-MiniLM-L6-v2 encode:      {1000 * best_of(lambda: text.encode(texts), args.repeat) / n:8.1f} ms/text")

    with tempfile.TemporaryDirectory() as tmp:
        models = build_demo_models(Path(tmp))
        prompts = load_prompts()
        for max_new_tokens in (1, 48):
            mllm = build_mllm(str(models["mllm"]), backend="transformers", device="cpu",
                              batch_size=args.batch, max_new_tokens=max_new_tokens)  # fmt: skip
            seconds = best_of(lambda: mllm.answer(images, prompts), args.repeat)
            print(f"tiny MLLM answer ({len(prompts.questions)} q + description of <= {max_new_tokens:2d} tokens): "
                  f"{1000 * seconds / n:8.1f} ms/image")  # fmt: skip


if __name__ == "__main__":
    main()
