"""One training step per backbone, against CTR-GCN in the same process: forward + backward + SGD step
of the full MMCL model (FAM and FRM on, the backbone's own loss where it has one) at the NTU120
shape (3 x T x 25 x 2), at the official widths unless --base-channel says otherwise.

Rounds interleave the backbones (CTR-GCN, HD-GCN, ST-GCN++, ProtoGCN, CTR-GCN, ...) so that the
load of a shared machine falls on all of them alike; each round's ratio is to that round's
CTR-GCN step: seconds per step of the backbone over CTR-GCN's (above 1: slower than CTR-GCN).
Ends with one line per backbone:
`RESULT train-step <backbone>/ctrgcn <median ratio> (spread <min>-<max>)`.

    PYTHONPATH=. python bench/bench_backbones.py [--batch 8] [--frames 64] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from stage2_train.models.backbones import BACKBONES
from stage2_train.models.losses import mmcl_loss
from stage2_train.models.mmcl_model import MMCLModel
from stage2_train.models.model_config import MMCLModelConfig, backbone_config

RGB_DIM, TEXT_DIM = 1280, 384  # EfficientNet-Lite0 pooled, MiniLM


def make_step(kind: str, args) -> callable:
    torch.manual_seed(0)
    backbone = backbone_config(
        kind, num_class=120, num_point=25, num_person=2, graph="ntu25", base_channel=args.base_channel
    )
    model = MMCLModel(MMCLModelConfig(backbone, use_fam=True, use_frm=True, rgb_dim=RGB_DIM, text_dim=TEXT_DIM)).train()
    x = torch.randn(args.batch, 3, args.frames, 25, 2)
    labels = torch.randint(0, 120, (args.batch,))
    rgb, text = torch.randn(args.batch, RGB_DIM), torch.randn(args.batch, TEXT_DIM)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)

    def step() -> None:
        out = model(x, rgb, text, label=labels)
        loss = mmcl_loss(
            out["logits"],
            labels,
            refined=out["refined"],
            feature=out["feature"],
            rgb_proj=out["rgb_proj"],
            backbone_loss=out["backbone_loss"],
        ).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()

    return step


def seconds(step, steps: int) -> float:
    step()  # first call: allocation
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--base-channel", type=int, default=None, help="default: each backbone's own")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per backbone per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = {kind: make_step(kind, args) for kind in BACKBONES}
    times: dict[str, list[float]] = {kind: [] for kind in BACKBONES}
    for r in range(args.rounds):
        for kind, step in steps.items():
            times[kind].append(seconds(step, args.steps))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in times.items()), flush=True)
    base = np.array(times["ctrgcn"])
    print(
        f"batch {args.batch} x {args.frames} frames, {args.threads} threads, {args.rounds} rounds x "
        f"{args.steps} steps (shared machine: the spread is the load's)"
    )
    for kind in BACKBONES:
        t = np.array(times[kind])
        ratio = t / base
        print(f"{BACKBONES[kind].title}: {np.median(t) * 1000:.0f} ms/step ({args.batch / np.median(t):.1f} samples/s)")
        if kind != "ctrgcn":
            print(
                f"RESULT train-step {kind}/ctrgcn {np.median(ratio):.2f} (spread {ratio.min():.2f}-{ratio.max():.2f})"
            )


if __name__ == "__main__":
    main()
