"""A training step, ours against the reference loop, at equal batch and input shape, on the CPU.

One step = the next batch from the DataLoader, augmentation, forward, loss, backward, SGD.

  reference  CTR-GCN's loop: its per-sample numpy feeder (bench/reference_feeder.py: crop +
             F.interpolate resize + rotation for NTU, view change + min-max + frame draw for
             NW-UCLA) in the DataLoader, the eager float32 model with the reference's graph
             convolution forward (bench/reference_ctrgcn.py), cross-entropy, and `.item()` on the
             loss and the accuracy every step (two host syncs)
  ours       stage2_train's loop with its defaults: slices + collate in the DataLoader,
             BatchAugment on the whole batch, the same network and weights (CTR-GCN, FAM/FRM off;
             its CTRGC pools over time before conv1/conv2, the same maths on fewer positions), mmcl_loss,
             no host sync in the step, and `--mixed-precision auto`: float32 on CPU (the reference's maths)
  ours-bf16  ours under bf16 autocast (`--mixed-precision bf16`, other numerics): only with --bf16;
             fast only where the CPU computes bf16 natively (AVX512-BF16 or AMX)
  ours-compile  ours with torch.compile (inductor; only with --compile: compiling costs
             minutes per shape here)

Configurations: NTU (3 x 64 x 25 x 2, 60 classes) batch 16 and 64, NW-UCLA (3 x 52 x 20 x 1, 10
classes) batch 16. All in this process, the variants interleaved step by step over `--rounds`
rounds after one untimed warm-up step each; the ratio is the reference's step time over ours
(higher: ours faster), its spread over rounds and configurations. When ours is not 1.5x the
reference, a torch.profiler table of one of our NTU steps shows which ops take the time.

Usage: python bench/bench_train_step.py [--rounds 5] [--threads 2] [--bf16] [--compile] [--configs ntu16,ntu64,ucla16]
Ends with `RESULT train-step ours/reference <ratio> (spread <min>-<max>)`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_ctrgcn import use_reference_ctrgc  # noqa: E402
from reference_feeder import (
    ReferenceNTUFeeder,
    ReferenceUCLAFeeder,
    ntu_like_samples,  # noqa: E402
    ucla_like_samples,
    write_ntu_like_cache,
    write_reference_npz,
    write_ucla_like_cache,
)
from shared.cache_schema import SkeletonCache  # noqa: E402
from shared.layouts import LAYOUTS  # noqa: E402
from stage2_train.data.augment_config import AugmentConfig  # noqa: E402
from stage2_train.data.dataset import JointSource, SkeletonDataset, make_loader  # noqa: E402
from stage2_train.training.device import resolve_mixed_precision  # noqa: E402
from stage2_train.models.losses import mmcl_loss  # noqa: E402
from stage2_train.models.mmcl_model import MMCLModel  # noqa: E402
from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig  # noqa: E402
from stage2_train.data.transforms import InputPipeline  # noqa: E402

SAMPLES = 160  # per configuration: enough distinct batches, quick to write
CONFIGS = {  # name: (dataset, batch)
    "ntu16": ("ntu", 16),
    "ntu64": ("ntu", 64),
    "ucla16": ("ucla", 16),
}


def forever(loader) -> Iterator:
    while True:
        yield from loader


def make_model(dataset: str) -> MMCLModel:
    torch.manual_seed(0)
    if dataset == "ntu":
        cfg = CTRGCNConfig(num_class=60, num_point=25, num_person=2, graph="ntu25")
    else:
        cfg = CTRGCNConfig(num_class=10, num_point=20, num_person=1, graph="kinect_v1")
    return MMCLModel(MMCLModelConfig(cfg))


def sgd(model) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=4e-4)


def reference_step(dataset: str, batch: int, folder: Path) -> Callable[[], None]:
    if dataset == "ntu":
        feeder = ReferenceNTUFeeder(folder / "ntu_like.npz", window=64)
    else:
        samples, labels = ucla_like_samples(SAMPLES)
        feeder = ReferenceUCLAFeeder([s[:, 0] for s in samples], labels, window=52)
    batches = forever(torch.utils.data.DataLoader(feeder, batch_size=batch, shuffle=True, drop_last=True))
    model = use_reference_ctrgc(make_model(dataset))
    optimizer = sgd(model)
    model.train()

    def step() -> None:
        x, label, _ = next(batches)
        out = model(x.float()).logits
        loss = F.cross_entropy(out, label)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item(), (out.argmax(1) == label).float().mean().item()  # the reference logs both every step

    return step


def our_step(dataset: str, batch: int, folder: Path, variant: str) -> Callable[[], None]:
    cache = SkeletonCache(folder / ("ntu60" if dataset == "ntu" else "nw-ucla"))
    loader = make_loader(
        SkeletonDataset(JointSource(cache), np.arange(len(cache)), cache.labels), batch, train=True, workers=0, seed=0
    )
    batches = forever(loader)
    augment = AugmentConfig(window=64) if dataset == "ntu" else AugmentConfig(window=52, kind="ucla-view")
    pipeline = InputPipeline(augment, True, "joint", LAYOUTS[cache.layout])
    generator = torch.Generator().manual_seed(0)
    model = make_model(dataset)
    optimizer = sgd(model)
    model.train()
    if variant == "ours-compile":
        model.compile()
    precision = "bf16" if variant == "ours-bf16" else resolve_mixed_precision("auto", "cpu")

    def step() -> None:
        b = next(batches)
        x = pipeline(b, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):  # as accelerate: the model
            out = model(x)
        loss = mmcl_loss(out.logits.float(), b["label"], feature=out.feature.float()).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def profile(step: Callable[[], None], rows: int = 15) -> None:
    from torch.profiler import profile as torch_profile

    with torch_profile() as p:
        step()
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows), flush=True)


def spread(values: list[float]) -> str:
    return f"{np.median(values):.2f} (spread {min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="torch threads (2: this machine's cores, as pipeline.sh's OMP_NUM_THREADS)",
    )
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument(
        "--bf16", action="store_true", help="also time ours under bf16 autocast (--mixed-precision bf16)"
    )
    parser.add_argument("--compile", action="store_true", help="also time ours under torch.compile")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    auto = resolve_mixed_precision("auto", "cpu")
    print(f"ours trains in {'bf16 autocast' if auto == 'bf16' else 'float32'} (--mixed-precision auto on this CPU)")
    variants = ["reference", "ours"] + ["ours-bf16"] * args.bf16 + ["ours-compile"] * args.compile
    configs = args.configs.split(",")
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        samples, labels = ntu_like_samples(SAMPLES)
        write_ntu_like_cache(folder / "ntu60", samples, labels)
        write_reference_npz(folder / "ntu_like.npz", samples, labels)
        write_ucla_like_cache(folder / "nw-ucla", *ucla_like_samples(SAMPLES))
        steps = {}
        for c in configs:
            dataset, batch = CONFIGS[c]
            for v in variants:
                steps[c, v] = (
                    reference_step(dataset, batch, folder) if v == "reference" else our_step(dataset, batch, folder, v)
                )
                warm = timed(steps[c, v])  # first-call allocation (compilation under --compile)
                print(f"{c} {v}: warm-up step {warm:.2f} s", flush=True)
        for r in range(args.rounds):
            for c in configs:
                for v in variants:
                    times.setdefault((c, v), []).append(timed(steps[c, v]))
                line = "  ".join(f"{v} {times[c, v][-1]:.2f} s" for v in variants)
                print(f"round {r + 1} {c}: {line}", flush=True)
        print(
            f"\n{args.threads} torch thread(s); median step time over {args.rounds} rounds; ratio = "
            f"reference time / ours (higher: ours faster)"
        )
        ratios = []
        for c in configs:
            ref = times[c, "reference"]
            for v in variants[1:]:
                r = [a / b for a, b in zip(ref, times[c, v])]
                t = float(np.median(times[c, v]))
                print(
                    f"  {c:7s} {v:13s} {t:6.2f} s/step ({CONFIGS[c][1] / t:6.1f} samples/s)  "
                    f"reference {np.median(ref):6.2f} s/step  ratio {spread(r)}"
                )
                if v == "ours":
                    ratios += r
        if np.median(ratios) < 1.5 and not args.no_profile and "ntu16" in configs:
            print(
                "\nours < 1.5x the reference: where one of our NTU batch-16 steps spends its time "
                "(the network's convolutions bound both loops):"
            )
            profile(steps["ntu16", "ours"])
    print(f"RESULT train-step ours/reference {spread(ratios)}")


if __name__ == "__main__":
    main()
