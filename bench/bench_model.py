"""Throughput of the stage-2 model on this machine (CPU unless --device says otherwise).

Training: samples/s of forward + backward + SGD step at the NTU shape (3 x 64 x 25 x 2), for
CTR-GCN alone and with FAM + FRM attached (their ratio is the heads' overhead).
Inference: samples/s of the backbone in eval mode at batch 1 and a large batch.

    /work/venv/bin/python bench/bench_model.py [--batch 16] [--steps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig
from stage2_train.models.losses import mmcl_loss
from stage2_train.models.mmcl_model import MMCLModel

NTU = dict(num_class=120, num_point=25, num_person=2, graph="ntu25")
FRAMES = 64


def timed(step: Callable[[], None], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call, after `warmup` untimed calls (first calls pay for allocation/tuning)."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def train_step_fn(
    model: MMCLModel, batch: int, rgb_dim: int, text_dim: int, device: torch.device
) -> Callable[[], None]:
    x = torch.randn(batch, 3, FRAMES, NTU["num_point"], NTU["num_person"], device=device)
    labels = torch.randint(0, NTU["num_class"], (batch,), device=device)
    rgb = torch.randn(batch, rgb_dim, device=device) if model.fam is not None else None
    text = torch.randn(batch, text_dim, device=device) if model.frm is not None else None
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    model.train()

    def step() -> None:
        out = model(x, rgb, text)
        loss = mmcl_loss(out.logits, labels, refined=out.refined, feature=out.feature, rgb_proj=out.rgb_proj).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def infer_step_fn(model: MMCLModel, batch: int, device: torch.device) -> Callable[[], None]:
    skeleton = model.skeleton_model().eval()
    x = torch.randn(batch, 3, FRAMES, NTU["num_point"], NTU["num_person"], device=device)

    def step() -> None:
        with torch.inference_mode():
            skeleton(x)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="training batch size")
    parser.add_argument("--infer-batch", type=int, default=64, help="large inference batch size")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--rgb-dim", type=int, default=1280, help="cached RGB embedding width")
    parser.add_argument("--text-dim", type=int, default=384, help="cached text feature width")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)

    backbone = CTRGCNConfig(**NTU)
    plain = MMCLModel(MMCLModelConfig(backbone)).to(device)
    heads = MMCLModel(
        MMCLModelConfig(backbone, use_fam=True, use_frm=True, rgb_dim=args.rgb_dim, text_dim=args.text_dim)
    ).to(device)
    n_backbone = sum(p.numel() for p in plain.parameters())
    n_heads = sum(p.numel() for p in heads.parameters()) - n_backbone
    print(f"device {device}, torch threads {torch.get_num_threads()}, input 3x{FRAMES}x25x2", flush=True)
    print(f"parameters: CTR-GCN {n_backbone:,}, FAM+FRM {n_heads:,} (training only)", flush=True)

    t_plain = timed(train_step_fn(plain, args.batch, args.rgb_dim, args.text_dim, device), args.steps, 1, device)
    t_heads = timed(train_step_fn(heads, args.batch, args.rgb_dim, args.text_dim, device), args.steps, 1, device)
    print(
        f"train  batch {args.batch:3d}: CTR-GCN {args.batch / t_plain:8.2f} samples/s, "
        f"+FAM+FRM {args.batch / t_heads:8.2f} samples/s, time ratio {t_heads / t_plain:.3f}",
        flush=True,
    )

    for batch, steps in ((1, 5 * args.steps), (args.infer_batch, max(1, args.steps - 1))):
        t = timed(infer_step_fn(plain, batch, device), steps, 1, device)
        print(f"infer  batch {batch:3d}: {batch / t:8.2f} samples/s ({1000 * t:.1f} ms/batch)", flush=True)


if __name__ == "__main__":
    main()
