"""Stage 1 commands: `mmcl extract` (= `mmcl-extract`), `mmcl demo-data`, `mmcl demo-models`.

Only torch-free modules are imported here (the options' defaults come from `model_specs`); each command
imports its machinery when it runs, so `--help` answers without starting torch. `extract` turns its flags
into one `ExtractOptions` (extract_options.py) and runs the mode they choose (extract_modes.py)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from shared.command import run
from shared.custom_dataset import CUSTOM
from shared.errors import MMCLError
from shared.numeric_options import FiniteFloat
from shared.registry import DATASETS

from .extract_options import ExtractOptions
from .model_specs import (
    DEFAULT_MLLM,
    DEFAULT_RGB_ENCODER,
    DEFAULT_TEXT_ENCODER,
    TRANSFORMERS_BATCH_SIZE,
    VLLM_BATCH_SIZE,
    VLLM_DTYPES,
    VLLMEngine,
)

DEMO_WHICH = ("demo", "utd-mhad", "sysu", "custom")
DEMO_DEFAULT = DEMO_WHICH[:3]  # custom: the worked example of a dataset of one's own (README)


def _image_size(ctx, param, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        w, h = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected WIDTHxHEIGHT, e.g. 1120x448") from None
    if w < 1 or h < 1:
        raise click.BadParameter(f"{value!r}: width and height must be positive")
    if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE:
        raise click.BadParameter(
            f"{value!r}: at most {MAX_IMAGE_SIDE} pixels a side (the models see 224 to 448; "
            f"a larger image does not fit in memory)"
        )
    return w, h


MAX_IMAGE_SIDE = 16384


def _device(ctx, param, value: str) -> str:
    """auto, cpu, cuda or cuda:N, and a CUDA device only where one exists (torch imported only then)."""
    m = re.fullmatch(r"auto|cpu|cuda(?::(\d+))?", value.strip())
    if m is None:
        raise click.BadParameter(f"{value!r}: expected auto, cpu, cuda or cuda:N")
    if value.startswith("cuda"):
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(m[1] or 0)
        if index >= count:
            raise click.BadParameter(
                f"{value!r}: this machine has {count or 'no'} "
                f"CUDA device{'s' if count != 1 else ''}"
                + (f" (cuda:0 to cuda:{count - 1})" if count else "; use --device cpu")
            )
    return value.strip()


def _shard(ctx, param, value: str | None):
    from .shards import Shard

    return None if value is None else Shard.parse(value)


@click.command()
@click.option(
    "--dataset",
    required=True,
    type=click.Choice([*sorted(DATASETS), CUSTOM]),
    help=f"Dataset to extract ({CUSTOM}: your own, described by --manifest).",
)
@click.option(
    "--root", type=click.Path(path_type=Path), help="Dataset folder (default: $MMCL_DATA/<dataset> or data/<dataset>)."
)
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"With --dataset {CUSTOM}: the manifest (YAML) naming classes, layout, protocols and each "
    f"sample's files; see the README.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("cache"),
    show_default=True,
    help="Cache root; writes <out>/<dataset>/.",
)
@click.option("--mllm", default=DEFAULT_MLLM, show_default=True, help="MLLM: hub id or local directory.")
@click.option("--backend", type=click.Choice(["auto", "vllm", "transformers"]), default="auto", show_default=True)
@click.option(
    "--rgb-encoder",
    default=DEFAULT_RGB_ENCODER,
    show_default=True,
    help="'efficientnet-lite0', a .pth file, or a vision model's hub id or directory.",
)
@click.option(
    "--text-encoder",
    default=DEFAULT_TEXT_ENCODER,
    show_default=True,
    help="Sentence encoder for descriptions and class names.",
)
@click.option("--frames", type=click.IntRange(1, 64), default=5, show_default=True, help="K frames per temporal image.")
@click.option(
    "--image-size", callback=_image_size, metavar="WxH", help="Stitched image size [default: K x 224 by 448]."
)
@click.option(
    "--crop-margin",
    type=FiniteFloat(0, 2),
    default=0.15,
    show_default=True,
    help="Margin around the person, as a fraction of the box's longer side.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1),
    help=f"Samples per model call (the MLLM answers them in one pass) [default: "
    f"{VLLM_BATCH_SIZE} with vLLM, {TRANSFORMERS_BATCH_SIZE} with transformers].",
)
@click.option(
    "--chunk-size", type=click.IntRange(1), default=256, show_default=True, help="Samples per crash-safe commit."
)
@click.option("--limit", type=click.IntRange(1), help="Only the first N samples (a quick look).")
@click.option(
    "--shard",
    callback=_shard,
    metavar="I/N",
    help="Process shard I of N (I = 0..N-1: every N-th batch from batch I) into its own file; run "
    "every shard with the same --batch-size.",
)
@click.option("--feature-set", help="Feature set name [default: derived from the models and K].")
@click.option(
    "--prompts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Prompts file (questions, description instruction) instead of the built-in ones.",
)
@click.option("--skeletons-only", is_flag=True, help="Only build skeletons.h5.")
@click.option(
    "--import-npz",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Make skeletons.h5 from CTR-GCN's preprocessed npz instead of the raw files.",
)
@click.option(
    "--names",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --import-npz: its sample names (skes_available_name.txt).",
)
@click.option("--protocol", help="With --import-npz: the npz's split [default: the dataset's first].")
@click.option(
    "--import-pyskl",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Make skeletons.h5 from a pyskl 3D annotation pickle (ntu60_3danno.pkl) instead of the raw files.",
)
@click.option("--merge", is_flag=True, help="Merge the shard files of the feature set into <name>.h5.")
@click.option(
    "--frame-features",
    is_flag=True,
    help="Also store rgb/frames: each of the K crops' RGB embedding (K more encoder passes per sample; "
    "stage 2 reads only rgb/pooled).",
)
@click.option("--save-images", is_flag=True, help="Keep the temporal images as JPEG (features/<name>.images/).")
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Extract the samples recorded as failed again (samples whose video changed always are).",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    help="Decoding processes (0: decode in the main process) [default: with the models on the CPU a "
    "quarter of the cores, at least 1 (the models use the rest); on a GPU all cores but two].",
)
@click.option(
    "--vllm-tensor-parallel-size",
    type=click.IntRange(1),
    default=VLLMEngine.tensor_parallel_size,
    show_default=True,
    help="vLLM: GPUs the MLLM is split over.",
)
@click.option(
    "--vllm-gpu-memory-utilization",
    type=FiniteFloat(0, 1, min_open=True),
    default=VLLMEngine.gpu_memory_utilization,
    show_default=True,
    help="vLLM: fraction of each GPU's memory for weights and KV cache.",
)
@click.option(
    "--vllm-max-model-len",
    type=click.IntRange(1),
    default=VLLMEngine.max_model_len,
    show_default=True,
    help="vLLM: context length in tokens (a 1120x448 temporal image is about 640).",
)
@click.option(
    "--vllm-dtype",
    type=click.Choice(VLLM_DTYPES),
    default=VLLMEngine.dtype,
    show_default=True,
    help="vLLM: weights' dtype (auto: the checkpoint's).",
)
@click.option("--device", default="auto", show_default=True, callback=_device, help="auto, cpu, cuda, cuda:1, ...")
@click.option(
    "--engine",
    type=click.Choice(["single", "ray"]),
    default="single",
    show_default=True,
    help="single: this process (+ --workers decoders); ray: a Ray Data pipeline (pip install 'mmcl-action[ray]').",
)
@click.option(
    "--ray-address",
    metavar="auto|HOST:PORT",
    help="With --engine ray: the cluster to join [default: a local Ray started for the run].",
)
@click.option(
    "--ray-workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="With --engine ray: model workers (each holds the three models).",
)
@click.option(
    "--gpus-per-worker",
    type=FiniteFloat(0),
    help="With --engine ray: GPUs per model worker [default: 1 where the cluster has GPUs, 0 with --device cpu].",
)
@click.option(
    "--cpus-per-worker",
    type=FiniteFloat(0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --engine ray: CPUs per model worker (its torch threads, at least 1).",
)
@click.option(
    "--overlap/--no-overlap",
    default=None,
    help="Run the RGB and text encoders on threads beside the MLLM [default: when on a GPU].",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def extract(**params) -> int:
    """Stage 1: skeleton cache, temporal images, RGB embeddings and MLLM text features."""
    from .extract_modes import run_extract

    return run_extract(ExtractOptions(**params))


@click.command("demo-data")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Writes <out>/demo, <out>/utd-mhad, <out>/sysu (and <out>/custom).",
)
@click.option(
    "--which",
    default=",".join(DEMO_DEFAULT),
    show_default=True,
    help="Comma-separated subset of: " + ", ".join(DEMO_WHICH),
)
def demo_data(out: Path, which: str) -> int:
    """Generate the demo dataset in the NTU layout, plus UTD-MHAD and SYSU layouts of the same motions."""
    from .demo import dataset as gen
    from .demo.custom import generate_custom

    chosen = [w.strip() for w in which.split(",") if w.strip()]
    unknown = sorted(set(chosen) - set(DEMO_WHICH))
    if unknown:
        raise MMCLError(f"--which: unknown {', '.join(unknown)}; choose from {', '.join(DEMO_WHICH)}")
    makers = {
        "demo": gen.generate_demo,
        "utd-mhad": gen.generate_utd,
        "sysu": gen.generate_sysu,
        "custom": generate_custom,
    }
    for key in chosen:
        summary = makers[key](out / key)
        click.echo(f"{key}: {summary['samples']} samples in {out / key}")
    return 0


@click.command("demo-models")
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo_models"), show_default=True)
def demo_models(out: Path) -> int:
    """Build the offline demo models (tiny MLLM, EfficientNet-Lite0, MiniLM) into a folder."""
    from .demo.models import build_demo_models

    for role, path in build_demo_models(out).items():
        click.echo(f"{role}: {path}")
    return 0


@click.command("export-pyskl")
@click.option("--cache", required=True, type=click.Path(), help="Cache root or one dataset's directory.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pickle to write, e.g. ntu60_3danno.pkl.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export_pyskl(cache: str, out: Path, quiet: bool) -> int:
    """Write a cache's skeletons as a pyskl 3D annotation pickle (split + annotations)."""
    from shared.cache_schema import resolve_dataset_dir

    from .pyskl_interop import export_pyskl as write_pickle

    count = write_pickle(resolve_dataset_dir(cache), out, progress=not quiet)
    click.echo(f"{out}: {count} samples in pyskl's layout")
    return 0


def main() -> None:
    run(extract)


if __name__ == "__main__":
    main()
