"""Stage 2's commands: `mmcl train` (also `mmcl-train`) and `mmcl test`.

The training machinery (accelerate, the model, TensorBoard) is imported inside the commands.
Later commands of this stage (ensemble, export, predict, zeroshot) belong in this file too: each
is a click command named as in `mmcl.cli.SUBCOMMANDS`, which imports them lazily.
"""

from __future__ import annotations

from pathlib import Path

import click

from shared.command import run

from .data.streams import STREAMS
from .settings import click_options
from .training.config import SETTINGS, describe_recipe
from .training.recipes import RECIPES


# --------------------------------------------------------------------------- train

# `mmcl train`'s options that are no setting of the run (or, --recipe, whose help is made here).
_NOT_SETTINGS = {
    "recipe": click.Option(
        ["--recipe"],
        type=click.Choice(sorted(RECIPES)),
        help="Defaults: mmcl with FAM or FRM, ctrgcn without, demo for the demo dataset; --init-from: the "
        "checkpoint's. " + "; ".join(describe_recipe(r) for r in RECIPES) + " (NW-UCLA: batch 16, "
        "wd 1e-4, step 50, window 52, 65 epochs, repeat 5). Fitted to small datasets (said at start). "
        "configs/<dataset>/<recipe>.yaml hold them as --config files to edit.",
    ),
    "config_file": click.Option(
        ["--config", "config_file"],
        type=click.Path(exists=True, dir_okay=False),
        help="YAML or TOML file of settings (recipe < file < flags).",
    ),
    "resume": click.Option(
        ["--resume"],
        is_flag=True,
        help="Continue the work dir's last.pt exactly (without --work-dir: the "
        "runs/<dataset>-<protocol>-<stream>-latest run).",
    ),
}

# The order `mmcl train --help` lists its options in (flat keys, and the names above). A setting
# declared with a flag (`setting(..., flag=True)`) and not named here follows at the end.
# laid out by hand, as a table: ruff format leaves it so
# fmt: off
OPTION_ORDER = (
    "cache", "protocol", "stream", "work_dir", "features", "recipe", "config_file", "epochs", "batch_size",
    "test_batch_size", "lr", "weight_decay", "warmup", "steps", "schedule", "min_lr", "seed", "lambda_align",
    "lambda_refine", "tau",
    "backbone", "center_of_mass", "base_channel", "frm_vectors", "use_fam", "use_frm", "resume",
    "keep_checkpoints", "init_from", "layout", "persons", "mixed_precision", "compile", "log_every", "val_split",
    "val_seed", "test_every", "workers", "on_device", "window", "test_clips", "device")
# fmt: on


def train_options(settings: dict | None = None, order: tuple[str, ...] = OPTION_ORDER) -> list[click.Option]:
    """`mmcl train`'s options: the settings' (generated from their fields) and the others, in `order`."""
    generated = {o.name: o for o in click_options((settings or SETTINGS).values())}
    named = {**generated, **_NOT_SETTINGS}
    unknown = [n for n in order if n not in named]
    assert not unknown, f"OPTION_ORDER names no option {unknown}"
    return [named[n] for n in order] + [o for n, o in generated.items() if n not in order]


@click.command(params=train_options())
def train(config_file: str | None, resume: bool, **options) -> None:
    """Train a skeleton backbone (CTR-GCN by default) with MMCL's FAM and FRM on a cache made by `mmcl extract`."""
    from .training.train import train as run_training

    cfg, notes, ckpt = resolve_train(config_file, resume, **options)
    for line in notes:
        click.echo(line)
    run_training(cfg, ckpt)


def resolve_train(config_file: str | None, resume: bool, **options):
    """`mmcl train`'s parameters -> (the resolved config, notes for the user, the checkpoint to continue).

    The notes start with the settings line (each main setting and where it came from: default,
    recipe, --init-from, config file, flag, or fitted to the data by recipe_fit)."""
    from shared.cache_schema import SkeletonCache, resolve_dataset_dir

    from .data.dataset import make_splits
    from .training.config import (
        check_resume_compatible,
        check_resume_epochs,
        finalize_config,
        load_config_file,
        resolve_with_sources,
    )
    from .training.input_resolution import resolve_input_layout
    from .training.published_weights import check_init, init_architecture, load_weights, network_input
    from .training.recipe_fit import fit_recipe, settings_lines
    from .training.run_dirs import latest_run, train_run_name
    from .training.work_dir import load_resume_checkpoint

    flags = options  # flat key -> value; None where the flag was not given
    file_values = load_config_file(config_file)
    dataset_dir = resolve_dataset_dir(flags["cache"] or file_values.get("cache") or "cache")
    skeletons = SkeletonCache(dataset_dir)
    init_from = flags.get("init_from") or file_values.get("init_from")
    init = load_weights(init_from) if init_from and not resume else None

    def resolved(base=None):
        r = resolve_with_sources(
            skeletons.dataset,
            file_values,
            flags,
            base=base,
            inherited=init_architecture(init) if init is not None else None,
            file_name=config_file,
        )
        r = type(r)(finalize_config(r.config, dataset_dir, skeletons.protocols), r.sources)
        d = r.config.data
        fitted, fit_notes = fit_recipe(r, len(make_splits(skeletons, d.protocol, d.val_split, d.val_seed).train))
        cfg, notes = resolve_input_layout(fitted.config, skeletons, network_input(init) if init is not None else None)
        if init is not None:
            check_init(init, cfg, fitted.sources)
        return cfg, [*settings_lines(type(fitted)(cfg, fitted.sources)), *fit_notes, *notes]

    (cfg, notes), ckpt = resolved(), None
    if resume:  # read (and check) the checkpoint before anything in the work dir is touched
        work_dir = cfg.work_dir or str(
            latest_run(train_run_name(cfg.data.dataset, cfg.data.protocol, cfg.data.stream, cfg.model.backbone))
        )
        ckpt = load_resume_checkpoint(work_dir)
        cfg, notes = resolved(base={**ckpt.config, "work_dir": work_dir})
        check_resume_compatible(cfg, ckpt.train_config(), Path(cfg.work_dir) / "last.pt")
        check_resume_epochs(cfg, ckpt.epoch, Path(cfg.work_dir) / "last.pt")
        click.echo(f"resuming {cfg.work_dir} after epoch {ckpt.epoch}")
    return cfg, notes, ckpt


# --------------------------------------------------------------------------- test


@click.command()
@click.option(
    "--checkpoint",
    "checkpoint_path",
    required=True,
    type=click.Path(),
    help="A training checkpoint (<work dir>/last.pt or checkpoints/epoch-NNN.pt), or a published "
    "CTR-GCN (.pt) or pyskl (.pth) one with --cache (its dataset).",
)
@click.option("--cache", type=click.Path(), help="Cache root or dataset directory (default: the training cache).")
@click.option("--protocol", help="Split protocol (default: the training protocol).")
@click.option(
    "--stream",
    type=click.Choice(STREAMS + ("joint_motion", "bone_motion")),
    help="Input stream (default: the training stream).",
)
@click.option(
    "--split",
    type=click.Choice(["test", "val"]),
    default="test",
    show_default=True,
    help="val: the validation split training held out (--val-split; same fraction and seed, "
    "same samples), for `mmcl ensemble --search`.",
)
@click.option(
    "--out",
    type=click.Path(),
    help="Output folder (default: a new <work dir>/eval-<split>-<YYYYmmdd-HHMMSS>; never the "
    "training report eval/ or eval-val/, which `mmcl ensemble` reads).",
)
@click.option("--test-batch-size", type=int, help="Evaluation batch size (default: the training run's).")
@click.option("--batch-size", "batch_size_alias", type=int, hidden=True)  # the former name, kept as an alias
@click.option("--workers", type=int)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
@click.option(
    "--test-clips",
    type=click.IntRange(1, 100),
    help="Windows per sample, class probabilities averaged (default: the training run's).",
)
def test(
    checkpoint_path: str,
    cache: str | None,
    protocol: str | None,
    stream: str | None,
    split: str,
    out: str | None,
    test_batch_size: int | None,
    batch_size_alias: int | None,
    workers: int | None,
    device: str | None,
    test_clips: int | None,
) -> None:
    """Evaluate a trained checkpoint on the test (or held-out validation) split and write the report
    (in float32, as training evaluates, whatever precision it trained in)."""
    from shared.cache_schema import SkeletonCache, resolve_dataset_dir
    from shared.errors import MMCLError

    from .training.config import finalize_config
    from .training.published_weights import PublishedWeights, load_weights
    from .evaluation.checkpoint_eval import test_checkpoint
    from .training.run_report import check_not_training_report, evaluation_dir

    path = Path(checkpoint_path)
    ckpt = load_weights(path)
    if isinstance(ckpt, PublishedWeights):  # names no dataset: the cache says which
        if cache is None:
            raise MMCLError(
                f"{path} is a published {ckpt.source} checkpoint, which does not record its "
                f"dataset: pass --cache (the dataset it was trained on)"
            )
        for line in ckpt.notes():
            click.echo(line)
        ckpt = ckpt.as_checkpoint(resolve_dataset_dir(cache), stream)
    saved = ckpt.train_config()  # with the input layout the network takes
    dataset_dir = resolve_dataset_dir(cache or saved.data.cache, dataset=ckpt.spec.dataset)
    skeletons = SkeletonCache(dataset_dir)
    overrides = dict(
        stream=stream,
        workers=workers,
        device=device,
        test_clips=test_clips,
        test_batch_size=test_batch_size or batch_size_alias,
    )
    overrides = {k: v for k, v in overrides.items() if v is not None}
    cfg = saved.replace(
        # test time runs the skeleton classifier alone, in float32: no features are read
        dataset=skeletons.dataset,
        use_fam=False,
        use_frm=False,
        mixed_precision="no",
        **overrides,
        # another cache of the same dataset keeps the protocol; else its first one
        protocol=protocol or (saved.data.protocol if saved.data.protocol in skeletons.protocols else None),
    )
    cfg = finalize_config(cfg, dataset_dir, skeletons.protocols)
    if cfg.data.stream != ckpt.spec.input.stream:
        click.echo(
            f"warning: the model was trained on the {ckpt.spec.input.stream} stream, evaluating on {cfg.data.stream}",
            err=True,
        )
    work_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if out:
        check_not_training_report(Path(out), work_dir)
    test_checkpoint(ckpt, path, cfg, Path(out) if out else evaluation_dir(work_dir, f"eval-{split}"), split)


# --------------------------------------------------------------------------- later commands
# ensemble, export, predict, zeroshot: added here by their issues.


def main() -> None:
    """Entry point of `mmcl-train` (the same command as `mmcl train`)."""
    run(train)


_LAZY_COMMANDS = {
    "zeroshot": ".transfer.zeroshot",
    "ensemble": ".evaluation.ensemble",
    "export": ".deploy.export",
    "predict": ".deploy.predict",
}


def __getattr__(name: str):
    """The commands defined in torch-importing modules, loaded on first use (keeps `--help` torch-free)."""
    if name in _LAZY_COMMANDS:
        import importlib

        return getattr(importlib.import_module(_LAZY_COMMANDS[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # `accelerate launch -m stage2_train.cli ...` (DDP)
    main()
