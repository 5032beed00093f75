"""The GPU path measured in one call (meant to end within 9 minutes on a bare H200; CUDA torch, nothing from a hub).

1. Training steps at the NTU120 X-Sub shape (3 x 64 x 25 x 2, 120 classes), batch 200, FAM + FRM
   on (RGB 1280-d, text 5 + 384-d), forward + mmcl_loss + backward + SGD, augmentation included
   (BatchAugment on the GPU from a padded raw batch of up to 300 frames), with each fast-path
   option on and off: bf16 autocast, TF32 matmuls, channels-last, torch.compile (inductor).
   Prints samples/s and the projected wall time of the full MMCL recipe (110 epochs x 63,026
   samples); the target is under 1 hour (>= 1,930 samples/s).
2. End to end: the same step fed by our DataLoader (in-memory NTU-like cache, 4 workers), and
   by `--data-on-device` (DeviceBatches: the cache on the GPU, batches gathered there).
3. The vLLM backend starts on CUDA with the tiny demo VLM (built offline by
   stage1_extract.demo.models.build_tiny_qwen) and answers the prompts for one image, in a
   process of its own so that its GPU memory and any failure stay apart from the numbers above.
   The dry run builds the same engine and sampling arguments (vllm_options) without starting it.
4. Stage 1's MLLM, last and in a process of its own (bench/stage1_gpu.py): Qwen2.5-VL-7B-Instruct
   built from its published config with random bf16 weights on the GPU, through the transformers
   backend (the image prefix shared by the questions and the description) on real-size temporal
   images with the real prompts, `--stage1-batches` timed batches of the real batch size; prints
   image-prompt tokens/s, samples/s and the projected hours for NTU120's 113,945 videos
   (`RESULT gpu-stage1 ...`). Needs torch and transformers only: no vLLM, decoder or hub.

`--dry-run` runs everything small on the CPU (tiny network, compile with the `eager` backend,
vLLM only imported if present, stage 1 with `--scale tiny`) in seconds: the test suite runs it so
the script stays sound.

Usage: python bench/bench_gpu.py [--dry-run] [--steps 20] [--no-compile] [--no-vllm] [--no-stage1]
                                 [--stage1-batches N]
Ends with `RESULT gpu-train samples/s <best> (projected <minutes> min for 110 x 63,026)`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

STAGE1_BENCH = Path(__file__).resolve().with_name("stage1_gpu.py")
EPOCHS, TRAIN_SAMPLES = 110, 63_026  # MMCL's NTU120 X-Sub recipe
TARGET_S = 3600.0
RGB_DIM, QUESTIONS, TEXT_DIM = 1280, 5, 384


@dataclass(frozen=True)
class Shape:
    batch: int
    window: int
    base_channel: int
    max_frames: int


FULL = Shape(batch=200, window=64, base_channel=64, max_frames=300)
DRY = Shape(batch=4, window=16, base_channel=8, max_frames=40)


@dataclass(frozen=True)
class Variant:
    name: str
    bf16: bool = False
    tf32: bool = False
    channels_last: bool = False
    compile: str | None = None  # a torch.compile backend


def variants(compile_backend: str | None) -> list[Variant]:
    out = [
        Variant("eager fp32"),
        Variant("tf32", tf32=True),
        Variant("bf16", bf16=True),
        Variant("bf16 + channels-last", bf16=True, channels_last=True),
    ]
    if compile_backend:
        out += [
            Variant("compile fp32", compile=compile_backend),
            Variant("compile bf16", bf16=True, compile=compile_backend),
        ]
    return out


def build(shape: Shape, device: torch.device, v: Variant):
    from shared.layouts import NTU25
    from stage2_train.data.augment_config import AugmentConfig
    from stage2_train.models.mmcl_model import MMCLModel
    from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig
    from stage2_train.data.transforms import InputPipeline

    torch.manual_seed(0)
    backbone = CTRGCNConfig(num_class=120, num_point=25, num_person=2, graph="ntu25", base_channel=shape.base_channel)
    model = MMCLModel(
        MMCLModelConfig(backbone, use_fam=True, use_frm=True, rgb_dim=RGB_DIM, text_dim=QUESTIONS + TEXT_DIM)
    ).to(device)
    if v.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if v.compile:
        model.compile(backend=v.compile)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=4e-4)
    pipeline = InputPipeline(AugmentConfig(window=shape.window), True, "joint", NTU25)
    return model, optimizer, pipeline


def synthetic_batch(shape: Shape, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = shape.batch
    lengths = torch.randint(shape.window, shape.max_frames + 1, (n,), generator=g)
    joints = torch.randn(n, shape.max_frames, 2, 25, 3, generator=g)
    joints *= (torch.arange(shape.max_frames)[None] < lengths[:, None])[..., None, None, None]
    batch = {
        "joints": joints,
        "length": lengths,
        "label": torch.randint(0, 120, (n,), generator=g),
        "rgb": torch.randn(n, RGB_DIM, generator=g),
        "rgb_valid": torch.ones(n, dtype=torch.bool),
        "text": torch.rand(n, QUESTIONS + TEXT_DIM, generator=g),
        "text_valid": torch.ones(n, dtype=torch.bool),
    }
    return {k: t.to(device) for k, t in batch.items()}


def step_fn(model, optimizer, pipeline, device: torch.device, v: Variant):
    from stage2_train.models.losses import mmcl_loss

    generator = torch.Generator(device).manual_seed(0)

    def step(batch) -> torch.Tensor:
        x = pipeline(batch, generator)  # channels-last: the weights; the network folds its input to 4-d itself
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=v.bf16):
            out = model(x, rgb=batch["rgb"], text=batch["text"])
            parts = mmcl_loss(
                out.logits,
                batch["label"],
                refined=out.refined,
                text_valid=batch["text_valid"],
                feature=out.feature,
                rgb_proj=out.rgb_proj,
                rgb_valid=batch["rgb_valid"],
            )
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        return parts.total.detach()

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_variant(shape: Shape, device: torch.device, v: Variant, steps: int) -> tuple[float, float]:
    """(samples/s over `steps` steps after warm-up, warm-up seconds)."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = v.tf32
    model, optimizer, pipeline = build(shape, device, v)
    step = step_fn(model, optimizer, pipeline, device, v)
    batches = [synthetic_batch(shape, device, seed) for seed in range(4)]
    start = time.perf_counter()
    for b in batches[:3]:  # compilation, cudnn autotuning, allocator warm-up
        step(b)
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(steps):
        loss = step(batches[i % len(batches)])
    sync(device)
    if not torch.isfinite(loss):
        raise SystemExit(f"{v.name}: the loss is not finite")
    return shape.batch * steps / (time.perf_counter() - start), warm


def end_to_end(
    shape: Shape, device: torch.device, v: Variant, steps: int, workers: int, on_device: bool = False
) -> float:
    """samples/s of the step fed by our DataLoader from an in-memory NTU-like cache, or with
    `on_device` by DeviceBatches from the same cache held on the device."""
    from reference_feeder import ntu_like_samples, write_ntu_like_cache
    from shared.cache_schema import SkeletonCache
    from stage2_train.data.dataset import JointSource, SkeletonDataset, make_loader
    from stage2_train.data.device_batches import DeviceBatches

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = v.tf32
    n = shape.batch * (steps + 3)
    with tempfile.TemporaryDirectory() as tmp:
        samples, labels = ntu_like_samples(n, frames=(shape.window, shape.max_frames + 1))
        cache = SkeletonCache(write_ntu_like_cache(Path(tmp) / "ntu60", samples, labels))
        dataset = SkeletonDataset(JointSource(cache, True), np.arange(n), cache.labels)
        loader = (
            DeviceBatches(dataset, shape.batch, 0, device)
            if on_device
            else make_loader(dataset, shape.batch, True, workers)
        )
        model, optimizer, pipeline = build(shape, device, v)
        step = step_fn(model, optimizer, pipeline, device, v)
        extra = synthetic_batch(shape, device)
        start, seen = None, 0
        for i, b in enumerate(loader):
            b = {k: t.to(device, non_blocking=True) for k, t in b.items()}
            b |= {k: extra[k][: len(b["label"])] for k in ("rgb", "rgb_valid", "text", "text_valid")}
            step(b)
            if i == 2:
                sync(device)
                start = time.perf_counter()
            elif i > 2:
                seen += len(b["label"])
        sync(device)
        return seen / (time.perf_counter() - start)


def projected_minutes(samples_s: float) -> float:
    return EPOCHS * TRAIN_SAMPLES / samples_s / 60


# --------------------------------------------------------------------------- vLLM


VLLM_IMAGE = (224, 112)  # (W, H) of the one image the vLLM check answers


def vllm_options() -> dict:
    """build_mllm's options for the vLLM check (engine settings in a VLLMEngine, as `mmcl extract`
    passes them): the dry run builds the engine's arguments from the same dictionary."""
    from stage1_extract.mllm_vllm import VLLMEngine

    return dict(
        engine=VLLMEngine(dtype="float32", max_model_len=2048, gpu_memory_utilization=0.3),
        enforce_eager=True,
        max_new_tokens=8,
        image_size=VLLM_IMAGE,
    )


def vllm_check(dry_run: bool) -> int:
    """Start the vLLM backend on the tiny demo VLM and answer one image (this process only); the
    dry run builds the same engine and sampling arguments without starting it."""
    from PIL import Image

    from stage1_extract.demo.models import MLLM_DIR_NAME, build_tiny_qwen
    from stage1_extract.mllm_backend import DescriptionDecoding, load_processor
    from stage1_extract.mllm_factory import build_mllm
    from stage1_extract.mllm_vllm import VLLMOptions, image_processor_kwargs, llm_kwargs, sampling_kwargs
    from stage1_extract.model_source import resolve_model_source
    from stage1_extract.prompts import load_prompts

    try:
        import vllm  # noqa: F401
    except ImportError as e:
        if not dry_run:
            print(f"vllm: not importable here ({e}); FAILED")
            return 1
        print(f"vllm: not importable here ({e}); engine start skipped (dry run)")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_qwen(Path(tmp) / MLLM_DIR_NAME)
        if dry_run:
            options, source = VLLMOptions(**vllm_options()), resolve_model_source(str(model_dir), "MLLM")
            kwargs = llm_kwargs(
                str(model_dir), options, image_processor_kwargs(load_processor(source), options.image_size)
            )
            _, describe = sampling_kwargs(
                DescriptionDecoding.of_checkpoint(source, None, options.max_new_tokens), options.logprobs
            )
            print(
                f"vllm (dry run): LLM arguments {sorted(kwargs)}; limit_mm_per_prompt "
                f"{kwargs['limit_mm_per_prompt']}, mm_processor_kwargs {kwargs.get('mm_processor_kwargs')}; "
                f"description sampling {describe}"
            )
            return 0
        mllm = build_mllm(str(model_dir), backend="vllm", **vllm_options())
        started = time.perf_counter() - start
        w, h = VLLM_IMAGE
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
        answer = mllm.answer([image], load_prompts())[0]
    ok = answer.error is None and np.isfinite(answer.yes_prob).all()
    print(
        f"vllm: engine up in {started:.0f} s; answer {'ok' if ok else 'FAILED'}: "
        f"P(yes) {np.round(answer.yes_prob, 3).tolist()}, description {answer.description!r}"
    )
    return 0 if ok else 1


# --------------------------------------------------------------------------- stage 1


def stage1_check(dry_run: bool, batches: int | None) -> int:
    """bench/stage1_gpu.py in a process of its own (its 16 GB of weights stay apart): the 7B on the
    GPU, or with the dry run the tiny demo VLM on the CPU; `batches` None: its default."""
    command = [sys.executable, str(STAGE1_BENCH), "--scale", "tiny" if dry_run else "7b"]
    if batches is not None:
        command += ["--batches", str(batches)]
    return subprocess.run(command, timeout=300).returncode


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="small, on the CPU, in seconds")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--no-vllm", action="store_true")
    parser.add_argument("--no-stage1", action="store_true", help="skip the stage-1 MLLM part (stage1_gpu.py)")
    parser.add_argument("--stage1-batches", type=int, help="timed batches of the stage-1 part")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--vllm-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.vllm_only:
        return vllm_check(args.dry_run)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run for the CPU smoke test")
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    shape = DRY if args.dry_run else FULL
    steps = 2 if args.dry_run else args.steps
    compile_backend = None if args.no_compile else ("eager" if args.dry_run else "inductor")
    name = "CPU (dry run)" if args.dry_run else torch.cuda.get_device_name()
    print(
        f"{name}; torch {torch.__version__}; batch {shape.batch}, window {shape.window}, "
        f"base channels {shape.base_channel}, FAM + FRM on",
        flush=True,
    )
    results = {}
    for v in variants(compile_backend):
        results[v] = time_variant(shape, device, v, steps)
        rate, warm = results[v]
        print(
            f"  {v.name:22s} {rate:9.1f} samples/s  (warm-up {warm:5.1f} s)  projected "
            f"{projected_minutes(rate):7.1f} min for {EPOCHS} x {TRAIN_SAMPLES:,}",
            flush=True,
        )
    best = max(results, key=lambda v: results[v][0])
    workers = 0 if args.dry_run else args.workers
    e2e = 0.0
    for on_device in (False, True):
        rate = end_to_end(shape, device, best, steps, workers, on_device)
        feed = "--data-on-device" if on_device else f"our DataLoader, {workers} workers"
        print(
            f"  end to end ({best.name}, {feed}): {rate:.1f} samples/s, projected {projected_minutes(rate):.1f} min",
            flush=True,
        )
        e2e = max(e2e, rate)
    rc = 0
    if not args.no_vllm:
        env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        rc = subprocess.run(
            [sys.executable, __file__, "--vllm-only"] + (["--dry-run"] if args.dry_run else []), env=env, timeout=300
        ).returncode
    if not args.no_stage1:
        rc = stage1_check(args.dry_run, args.stage1_batches) or rc
    rate = results[best][0]
    verdict = "meets" if projected_minutes(e2e) * 60 <= TARGET_S else "misses"
    print(
        f"RESULT gpu-train samples/s {rate:.0f} ({best.name}; end to end {e2e:.0f}; projected "
        f"{projected_minutes(e2e):.0f} min for {EPOCHS} x {TRAIN_SAMPLES:,}: {verdict} the 1-hour target)"
    )
    return rc


if __name__ == "__main__":
    sys.exit(main())
