"""Stage 2's commands: `mmcl train` (also `mmcl-train`) and `mmcl test`.

The training machinery (accelerate, the model, TensorBoard) is imported inside the commands.
Later commands of this stage (ensemble, export, predict, zeroshot) belong in this file too: each
is a click command named as in `mmcl.cli.SUBCOMMANDS`, which imports them lazily.
"""

from __future__ import annotations

from pathlib import Path

import click

from shared.command import run
from shared.layouts import LAYOUTS
from shared.numeric_options import FiniteFloat

from .data.streams import STREAMS
from .models.model_config import BACKBONE_NAMES
from .training.config import MIXED_PRECISION, RECIPES, TrainConfig, describe_recipe


def _steps(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(s) for s in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected epochs like '90,100'") from None


# --------------------------------------------------------------------------- train


@click.command()
@click.option("--cache", type=click.Path(), help="Cache root or one dataset's directory (default: cache).")
@click.option("--protocol", help="Split protocol (default: the dataset's first, e.g. xsub, view3).")
@click.option("--stream", type=click.Choice(STREAMS + ("joint_motion", "bone_motion")),
              help="Input stream (default: joint).")
@click.option("--work-dir", type=click.Path(),
              help="Output folder, used exactly (default: a new runs/<dataset>-<protocol>-<stream>-seed<S>-<time> "
                   "per run, linked from runs/<dataset>-<protocol>-<stream>-latest).")
@click.option("--features", help="Feature set under <cache>/features (default: the only one).")
@click.option("--recipe", type=click.Choice(sorted(RECIPES)),
              help="Defaults: mmcl with FAM or FRM, ctrgcn without, demo for the demo dataset; --init-from: the "
                   "checkpoint's. " + "; ".join(describe_recipe(r) for r in RECIPES) + " (NW-UCLA: batch 16, "
                   "wd 1e-4, step 50, window 52, 65 epochs, repeat 5). Fitted to small datasets (said at start). "
                   "configs/<dataset>/<recipe>.yaml hold them as --config files to edit.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="YAML or TOML file of settings (recipe < file < flags).")
@click.option("--epochs", type=int)
@click.option("--batch-size", type=int, help="Global batch size (split over processes).")
@click.option("--test-batch-size", type=int)
@click.option("--lr", type=FiniteFloat(), help="Base learning rate.")
@click.option("--weight-decay", type=FiniteFloat())
@click.option("--warmup", type=int, help="Epochs of linear learning-rate warm-up.")
@click.option("--steps", callback=_steps,
              help="Epochs where the learning rate drops x0.1, e.g. 90,100 (--schedule step).")
@click.option("--schedule", type=click.Choice(["step", "cosine"]),
              help="After the warm-up: step (x0.1 at --steps, set each epoch; mmcl, ctrgcn) or cosine (set each "
                   "optimisation step, down to --min-lr at the end; hdgcn, stgcnpp, protogcn).")
@click.option("--min-lr", type=FiniteFloat(), help="Where --schedule cosine ends (hdgcn 1e-4; stgcnpp, protogcn 0).")
@click.option("--seed", type=int)
@click.option("--lambda-align", type=FiniteFloat(), help="Weight of FAM's contrastive loss (0.1).")
@click.option("--lambda-refine", type=FiniteFloat(), help="Weight of FRM's refined-score loss (0.2).")
@click.option("--tau", type=FiniteFloat(), help="Contrastive temperature (0.4).")
@click.option("--backbone", type=click.Choice(BACKBONE_NAMES),
              help="Skeleton backbone (default ctrgcn): FAM and FRM attach to any of them.")
@click.option("--center-of-mass", type=click.IntRange(min=1),
              help="HD-GCN: the 1-based joint its hierarchy grows from (default 21 on NTU-25, 3 on Kinect v1).")
@click.option("--base-channel", type=int,
              help="The backbone's first width (default its own: 64, ProtoGCN 96; the demo recipe 16).")
@click.option("--frm-vectors", type=int, help="FRM's number of class-wise vectors R (2).")
@click.option("--no-fam", "no_fam", is_flag=True, help="Train without the feature alignment module.")
@click.option("--no-frm", "no_frm", is_flag=True, help="Train without the feature refinement module.")
@click.option("--resume", is_flag=True,
              help="Continue the work dir's last.pt exactly (without --work-dir: the "
                   "runs/<dataset>-<protocol>-<stream>-latest run).")
@click.option("--keep-checkpoints", type=click.IntRange(min=0),
              help=f"Epoch checkpoints kept: the last N checkpoints/epoch-NNN.pt (default "
                   f"{TrainConfig.keep_checkpoints}; 0 keeps every epoch), plus last.pt. Each holds the full "
                   f"training state: about 15 MB at full width (base channel 64, FAM and FRM: 6 MB of "
                   f"weights, the rest optimiser state).")
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False),
              help="Start from a checkpoint's weights (fine-tuning): its width and recipe are kept unless a "
                   "config file or flag says otherwise; tensors that do not fit (a new classifier) start fresh. "
                   "Also published CTR-GCN (.pt) and pyskl CTR-GCN (.pth) files, and official HD-GCN .pt state "
                   "dicts with --center-of-mass N as trained (the file does not record it).")
@click.option("--layout", type=click.Choice(sorted(LAYOUTS)),
              help="Skeleton layout the network takes; another than the cache's maps the joints "
                   "(default: the cache's, or the --init-from checkpoint's where the cache maps to it).")
@click.option("--persons", type=click.IntRange(min=1),
              help="Persons per sample; more than the cache's pads absent ones "
                   "(default: the --init-from checkpoint's, else the cache's).")
@click.option("--mixed-precision", type=click.Choice(MIXED_PRECISION),
              help="Autocast. Default auto: bf16 on a CUDA GPU that computes it natively (Ampere on), "
                   "float32 (no) everywhere else, CPUs included. bf16 and fp16 change numerics; on CPU bf16 is "
                   "an explicit choice (its speed-up depends on the CPU: bench/bench_precision.py measures it).")
@click.option("--compile", "compile", type=click.Choice(["no", "inductor", "aot_eager", "eager"]), is_flag=False,
              flag_value="inductor", help="torch.compile the model; --compile alone: inductor (default no: "
                                          "compiling costs minutes, see bench/bench_train_step.py).")
@click.option("--log-every", type=click.IntRange(min=1), help="Steps between progress-bar updates (20).")
@click.option("--val-split", type=FiniteFloat(),
              help="Fraction of the training samples held out (seeded) for validation.")
@click.option("--val-seed", type=int,
              help="Seed of the validation draw (default 0, the same for every stream and --seed).")
@click.option("--test-every", type=int,
              help="Also evaluate on the test split every N epochs (0: only at the end): the way to follow test "
                   "accuracy (test/top1 % in TensorBoard, test_top1 in metrics.jsonl); report the last epoch.")
@click.option("--workers", type=int, help="DataLoader worker processes (default: 0 in memory, else 4).")
@click.option("--data-on-device", "on_device", is_flag=True, default=None,
              help="Hold the training frames and features on the training device and draw batches there "
                   "(no DataLoader; for a GPU with room for the cache: NTU120 frames are about 2 GB). "
                   "The same batches as the DataLoader's.")
@click.option("--window", type=int, help="Frames per sample after crop and resize (64; NW-UCLA 52).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
def train(config_file: str | None, resume: bool, no_fam: bool, no_frm: bool, **options) -> None:
    """Train a skeleton backbone (CTR-GCN by default) with MMCL's FAM and FRM on a cache made by `mmcl extract`."""
    from .training.train import train as run_training

    cfg, notes, ckpt = resolve_train(config_file, resume, no_fam, no_frm, **options)
    for line in notes:
        click.echo(line)
    run_training(cfg, ckpt)


def resolve_train(config_file: str | None, resume: bool, no_fam: bool, no_frm: bool, **options):
    """`mmcl train`'s parameters -> (the resolved config, notes for the user, the checkpoint to continue).

    The notes start with the settings line (each main setting and where it came from: default,
    recipe, --init-from, config file, flag, or fitted to the data by recipe_fit)."""
    from shared.cache_schema import SkeletonCache, resolve_dataset_dir

    from .data.dataset import make_splits
    from .training.config import (check_resume_compatible, check_resume_epochs, finalize_config,
                                  load_config_file, resolve_input_layout, resolve_with_sources)
    from .training.published_weights import check_init, init_architecture, load_weights, network_input
    from .training.recipe_fit import fit_recipe, settings_lines
    from .training.run_dirs import latest_run, train_run_name
    from .training.train import load_resume_checkpoint

    flags = {**options, "use_fam": False if no_fam else None, "use_frm": False if no_frm else None}
    file_values = load_config_file(config_file)
    dataset_dir = resolve_dataset_dir(flags["cache"] or file_values.get("cache") or "cache")
    skeletons = SkeletonCache(dataset_dir)
    init_from = flags.get("init_from") or file_values.get("init_from")
    init = load_weights(init_from) if init_from and not resume else None

    def resolved(base=None):
        r = resolve_with_sources(skeletons.dataset, file_values, flags, base=base,
                                 inherited=init_architecture(init) if init is not None else None,
                                 file_name=config_file)
        r = type(r)(finalize_config(r.config, dataset_dir, skeletons.protocols), r.sources)
        d = r.config.data
        fitted, fit_notes = fit_recipe(r, len(make_splits(skeletons, d.protocol, d.val_split, d.val_seed).train))
        cfg, notes = resolve_input_layout(fitted.config, skeletons,
                                          network_input(init) if init is not None else None)
        if init is not None:
            check_init(init, cfg, fitted.sources)
        return cfg, [*settings_lines(type(fitted)(cfg, fitted.sources)), *fit_notes, *notes]

    (cfg, notes), ckpt = resolved(), None
    if resume:  # read (and check) the checkpoint before anything in the work dir is touched
        work_dir = cfg.work_dir or str(latest_run(train_run_name(cfg.data.dataset, cfg.data.protocol,
                                                                 cfg.data.stream, cfg.model.backbone)))
        ckpt = load_resume_checkpoint(work_dir)
        cfg, notes = resolved(base={**ckpt.config, "work_dir": work_dir})
        check_resume_compatible(cfg, ckpt.train_config(), Path(cfg.work_dir) / "last.pt")
        check_resume_epochs(cfg, ckpt.epoch, Path(cfg.work_dir) / "last.pt")
        click.echo(f"resuming {cfg.work_dir} after epoch {ckpt.epoch}")
    return cfg, notes, ckpt


# --------------------------------------------------------------------------- test


@click.command()
@click.option("--checkpoint", "checkpoint_path", required=True, type=click.Path(),
              help="A training checkpoint (<work dir>/last.pt or checkpoints/epoch-NNN.pt), or a published "
                   "CTR-GCN (.pt) or pyskl (.pth) one with --cache (its dataset).")
@click.option("--cache", type=click.Path(),
              help="Cache root or dataset directory (default: the training cache).")
@click.option("--protocol", help="Split protocol (default: the training protocol).")
@click.option("--stream", type=click.Choice(STREAMS + ("joint_motion", "bone_motion")),
              help="Input stream (default: the training stream).")
@click.option("--split", type=click.Choice(["test", "val"]), default="test", show_default=True,
              help="val: the validation split training held out (--val-split; same fraction and seed, "
                   "same samples), for `mmcl ensemble --search`.")
@click.option("--out", type=click.Path(),
              help="Output folder (default: a new <work dir>/eval-<split>-<YYYYmmdd-HHMMSS>; never the "
                   "training report eval/ or eval-val/, which `mmcl ensemble` reads).")
@click.option("--test-batch-size", type=int, help="Evaluation batch size (default: the training run's).")
@click.option("--batch-size", "batch_size_alias", type=int, hidden=True)  # the former name, kept as an alias
@click.option("--workers", type=int)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]))
def test(checkpoint_path: str, cache: str | None, protocol: str | None, stream: str | None,
         split: str, out: str | None, test_batch_size: int | None, batch_size_alias: int | None,
         workers: int | None, device: str | None) -> None:
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
            raise MMCLError(f"{path} is a published {ckpt.source} checkpoint, which does not record its "
                            f"dataset: pass --cache (the dataset it was trained on)")
        for line in ckpt.notes():
            click.echo(line)
        ckpt = ckpt.as_checkpoint(resolve_dataset_dir(cache), stream)
    saved = ckpt.train_config()  # with the input layout the network takes
    dataset_dir = resolve_dataset_dir(cache or saved.data.cache, dataset=ckpt.spec.dataset)
    skeletons = SkeletonCache(dataset_dir)
    overrides = dict(stream=stream, workers=workers, device=device,
                     test_batch_size=test_batch_size or batch_size_alias)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    cfg = saved.replace(
        # test time runs the skeleton classifier alone, in float32: no features are read
        dataset=skeletons.dataset, use_fam=False, use_frm=False, mixed_precision="no", **overrides,
        # another cache of the same dataset keeps the protocol; else its first one
        protocol=protocol or (saved.data.protocol if saved.data.protocol in skeletons.protocols else None))
    cfg = finalize_config(cfg, dataset_dir, skeletons.protocols)
    if cfg.data.stream != ckpt.spec.input.stream:
        click.echo(f"warning: the model was trained on the {ckpt.spec.input.stream} stream, "
                   f"evaluating on {cfg.data.stream}", err=True)
    work_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if out:
        check_not_training_report(Path(out), work_dir)
    test_checkpoint(ckpt, path, cfg, Path(out) if out else evaluation_dir(work_dir, f"eval-{split}"), split)


# --------------------------------------------------------------------------- later commands
# ensemble, export, predict, zeroshot: added here by their issues.


def main() -> None:
    """Entry point of `mmcl-train` (the same command as `mmcl train`)."""
    run(train)


_LAZY_COMMANDS = {"zeroshot": ".transfer.zeroshot", "ensemble": ".evaluation.ensemble", "export": ".deploy.export",
                  "predict": ".deploy.predict"}


def __getattr__(name: str):
    """The commands defined in torch-importing modules, loaded on first use (keeps `--help` torch-free)."""
    if name in _LAZY_COMMANDS:
        import importlib
        return getattr(importlib.import_module(_LAZY_COMMANDS[name], __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":  # `accelerate launch -m stage2_train.cli ...` (DDP)
    main()
