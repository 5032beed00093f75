"""Inference throughput of the exported network vs eager PyTorch, on the CPU.

The reference CTR-GCN (base width 64, 10 units) at NTU's input shape (3 x 64 x 25 x 2), random
weights (speed does not depend on them), batch 1 and 64 by default. Prints samples/s per runtime:
eager, the TorchScript model that `mmcl export` writes, and with --onnx the ONNX model in
onnxruntime.

    python bench/bench_export.py [--batches 1,64] [--classes 120] [--min-seconds 5] [--threads N] [--onnx]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stage2_train.models.ctrgcn import CTRGCN
from stage2_train.models.model_config import CTRGCNConfig
from stage2_train.deploy.export import INPUT_NAME, OUTPUT_NAME, ExportConfig, quiet_torchscript, trace, write_onnx

SHAPE = (3, 64, 25, 2)  # C, T, V, M


@dataclass(frozen=True)
class Timing:
    runtime: str
    batch: int
    samples_per_s: float
    ms_per_batch: float
    repeats: int


def measure(run: Callable[[], object], batch: int, runtime: str, min_seconds: float, warmup: int = 1) -> Timing:
    """Median time of `run`, repeated for at least `min_seconds` (and 3 times) after `warmup`
    untimed calls (the first call of a TorchScript model runs its profiling executor)."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    while sum(times) < min_seconds or len(times) < 3:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    per_batch = float(np.median(times))
    return Timing(runtime, batch, batch / per_batch, 1000 * per_batch, len(times))


def runtimes(model: CTRGCN, onnx: bool, workdir: Path) -> dict[str, Callable[[torch.Tensor], object]]:
    example = torch.randn(2, *SHAPE)
    traced = trace(model, example)
    with quiet_torchscript():  # measure the saved file, as predict loads it
        torch.jit.save(traced, str(workdir / "model.ts"))
        loaded = torch.jit.load(str(workdir / "model.ts"))
    out: dict[str, Callable[[torch.Tensor], object]] = {"eager": model, "torchscript": loaded}
    if onnx:
        import onnxruntime as ort

        write_onnx(model, traced, example, workdir / "model.onnx", ExportConfig())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        session = ort.InferenceSession(str(workdir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        out["onnxruntime"] = lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    parser.add_argument("--classes", type=int, default=120)
    parser.add_argument("--min-seconds", type=float, default=5.0, help="timed seconds per runtime and batch")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch (and onnxruntime) threads (default: torch's); 1 is steadier on a busy machine",
    )
    parser.add_argument("--onnx", action="store_true", help="also time model.onnx in onnxruntime")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = CTRGCN(CTRGCNConfig(num_class=args.classes, num_point=25, num_person=2, graph="ntu25")).eval()
    print(
        f"CTR-GCN, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, input (N, "
        f"{', '.join(map(str, SHAPE))}), CPU, {torch.get_num_threads()} threads, torch {torch.__version__}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        fns = runtimes(model, args.onnx, Path(tmp))
        for batch in (int(b) for b in args.batches.split(",")):
            x = torch.randn(batch, *SHAPE)
            base = None
            for name, fn in fns.items():
                t = measure(functools.partial(fn, x), batch, name, args.min_seconds)
                base = base or t.samples_per_s
                print(
                    f"batch {batch:>3}  {name:<12} {t.samples_per_s:8.1f} samples/s  {t.ms_per_batch:9.1f} ms/batch  "
                    f"x{t.samples_per_s / base:.2f} vs eager  ({t.repeats} runs)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
