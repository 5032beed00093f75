"""What `mmcl extract` does, one function per mode, each given the command's `ExtractOptions`:

- merge:      --merge, the shard files of a feature set into <name>.h5
- import:     --import-npz / --import-pyskl with --skeletons-only, skeletons.h5 from another tool's files
- skeletons:  --skeletons-only, skeletons.h5 from the raw files
- ray:        --engine ray, the features by a Ray Data pipeline
- single:     the features in this process (+ --workers decoders)

`choose_mode` reads the flags and `run_extract` dispatches, in this one place. An import without
--skeletons-only goes on to extract the features (ray or single) once the skeletons are in.

The machinery each mode runs is imported when it runs: `--help` stays torch-free."""

from __future__ import annotations

import os
from collections.abc import Callable

import click

from shared.custom_dataset import CUSTOM
from shared.errors import MMCLError
from shared.registry import get_dataset

from .extract_options import ExtractOptions


def merge(options: ExtractOptions) -> int:
    from .shards import merge_shards

    summary = merge_shards(options.out / options.dataset, options.feature_set_name)
    click.echo(summary.report())
    return summary.exit_code


def import_only(options: ExtractOptions) -> int:
    """1 where samples failed (listed in the cache's failures/ table)."""
    from shared.cache_schema import SkeletonCache

    import_skeletons(options)
    return 1 if SkeletonCache(options.out / options.dataset).failures else 0


def skeletons_only(options: ExtractOptions) -> int:
    """1 where raw files were broken (listed in the cache's failures/ table)."""
    from .extract import ensure_skeletons

    config = options.extract_config()
    skeletons = ensure_skeletons(config.spec, config)
    return 1 if skeletons.failures else 0


def ray(options: ExtractOptions) -> int:
    from .extract import extract_features
    from .ray_engine import RayEngine, require_ray

    import_skeletons(options)
    config = options.extract_config()
    require_ray()  # before any work: say how to install it
    summary = extract_features(
        config,
        engine=RayEngine(
            address=options.ray_address,
            workers=options.ray_workers,
            gpus_per_worker=options.gpus_per_worker,
            cpus_per_worker=options.cpus_per_worker,
        ),
    )
    click.echo(summary.report())
    return summary.exit_code


def single(options: ExtractOptions) -> int:
    from .allocator import keep_freed_memory
    from .extract import extract_features

    import_skeletons(options)
    config = options.extract_config()
    if options.models.resolved_device() == "cpu" and config.workers:
        _leave_cores_to_workers(config.workers)
    keep_freed_memory()  # the models' large activations reuse heap pages (stage1_extract/allocator.py)
    summary = extract_features(config)
    click.echo(summary.report())
    return summary.exit_code


MODES: dict[str, Callable[[ExtractOptions], int]] = {
    "merge": merge,
    "import": import_only,
    "skeletons": skeletons_only,
    "ray": ray,
    "single": single,
}


def choose_mode(options: ExtractOptions) -> str:
    """The mode the flags ask for (a key of MODES)."""
    if options.merge:
        return "merge"
    if options.import_npz is not None and options.import_pyskl is not None:
        raise MMCLError("--import-npz and --import-pyskl: choose one source of skeletons")
    if options.skeletons_only:
        return "import" if options.imported else "skeletons"
    return "ray" if options.engine == "ray" else "single"


def run_extract(options: ExtractOptions) -> int:
    """`mmcl extract`: the exit status of the mode its flags choose."""
    if options.manifest is not None or options.dataset == CUSTOM:
        options = options.for_custom_dataset()
    return MODES[choose_mode(options)](options)


def import_skeletons(options: ExtractOptions) -> None:
    """skeletons.h5 from --import-npz or --import-pyskl; nothing without either."""
    if options.import_npz is not None:
        from .skeleton_cache import import_ctrgcn_npz

        if options.names is None:
            raise MMCLError("--import-npz needs --names FILE: the npz's sample names (skes_available_name.txt)")
        spec = get_dataset(options.dataset)
        import_ctrgcn_npz(
            spec,
            options.import_npz,
            options.names,
            spec.protocol(options.protocol).name,
            options.out,
            progress=options.progress,
        )
    elif options.import_pyskl is not None:
        from .pyskl_interop import import_pyskl

        import_pyskl(get_dataset(options.dataset), options.import_pyskl, options.out, progress=options.progress)


def _leave_cores_to_workers(workers: int) -> None:
    """Models on the CPU: use the cores the decoding workers leave (OpenMP threads that compete
    with busy processes for cores spin and slow everything down)."""
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 1) - workers)))
