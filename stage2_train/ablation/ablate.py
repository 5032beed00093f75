"""`mmcl ablate`: the paper's ablation from one cache. The four variants (baseline without FAM and
FRM, +FAM, +FRM, full MMCL) train for N seeds with otherwise identical settings by running
`mmcl train` in this process, one work dir per variant and seed (<out>/<variant>/seed-N); then
ablation_report writes the tables and the chart.

Identical settings: the recipe and the feature set are pinned from the full variant's resolution
(`mmcl train` would otherwise pick the ctrgcn recipe for the baseline), and the resolved configs are
checked to differ only in FAM, FRM, seed and work dir. Resumable: a run whose eval/summary.json is
newer than its config.yaml and whose config equals the one it would get now is not retrained; one
with a last.pt of that config continues it (--resume); any other is trained afresh.

`--backbones ctrgcn,hdgcn,...` runs the same four variants for each backbone under <out>/<backbone>/
(its own tables there, the backbone the only other difference) and writes the backbone x variant
table across them (ablation_report.write_backbone_table).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

from shared.command import run
from shared.errors import MMCLError

from .. import cli
from .report import RunResult, write_ablation, write_backbone_table


@dataclass(frozen=True)
class Variant:
    label: str  # in the tables
    folder: str  # under --out
    flags: tuple[str, ...]


VARIANTS = (
    Variant("baseline", "baseline", ("--no-fam", "--no-frm")),
    Variant("+FAM", "fam", ("--no-frm",)),
    Variant("+FRM", "frm", ("--no-fam",)),
    Variant("MMCL", "mmcl", ()),
)
# Train flags the ablation sets itself for each run.
OWN_FLAGS = ("--cache", "--work-dir", "--seed", "--no-fam", "--no-frm", "--resume")
OWN_WITH_BACKBONES = ("--backbone",)  # set per backbone when --backbones is given


def _backbones(ctx, param, value: str | None) -> tuple[str, ...]:
    """Distinct names; `mmcl train --backbone` checks each when the runs are planned, before any trains."""
    if value is None:
        return ()
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    if not names or len(set(names)) != len(names):
        raise click.BadParameter(f"{value!r}: expected distinct backbones, comma-separated")
    return names


# What may differ between the runs of one ablation.
VARYING = {"use_fam", "use_frm", "seed", "work_dir"}


@click.command(context_settings=dict(ignore_unknown_options=True, allow_interspersed_args=True))
@click.option("--cache", required=True, type=click.Path(), help="Cache root or one dataset's directory.")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Seeds per variant: 1..N (paired over variants).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/ablation"),
    show_default=True,
    help="Holds <variant>/seed-N/ work dirs and the ablation.* tables.",
)
@click.option(
    "--backbones",
    callback=_backbones,
    help="Comma-separated backbones (ctrgcn,hdgcn,stgcnpp,protogcn): the four variants for each, "
    "under <out>/<backbone>/, and the backbone x variant table.",
)
@click.argument("train_args", nargs=-1, type=click.UNPROCESSED)
def ablate(cache: str, seeds: int, out: Path, backbones: tuple[str, ...], train_args: tuple[str, ...]) -> None:
    """Baseline vs +FAM vs +FRM vs MMCL over seeds; other options go to `mmcl train` (e.g. --recipe,
    --epochs, --config)."""
    own = OWN_FLAGS + (OWN_WITH_BACKBONES if backbones else ())
    for arg in train_args:
        if arg.split("=")[0] in own:
            raise MMCLError(
                f"mmcl ablate sets {arg.split('=')[0]} itself for each run; drop it "
                f"(use --cache, --out and --backbones of mmcl ablate)"
            )
    if not backbones:
        run_planned(out, plan_runs(cache, seeds, out, list(train_args)))
        return
    # Every backbone's runs are planned (their configs resolved) before any trains.
    planned = {name: plan_runs(cache, seeds, out / name, [*train_args, "--backbone", name]) for name in backbones}
    results = {name: run_planned(out / name, plans) for name, plans in planned.items()}
    if _main_process():
        for path in write_backbone_table(out, results, [v.label for v in VARIANTS]):
            click.echo(f"wrote {path}")


def run_planned(out: Path, plans: list["PlannedRun"]) -> list[RunResult]:
    """Train what `plans` still need, then write their tables into `out`; the runs' results."""
    for n, p in enumerate(plans, 1):
        head = f"[{n}/{len(plans)}] {p.variant.label} seed {p.seed} ({p.work_dir})"
        if p.action == "done":
            click.echo(f"{head}: finished with this config, not retrained")
            continue
        click.echo(f"{head}: {'continuing last.pt' if p.action == 'resume' else 'training'}")
        cli.train.main(p.argv + (["--resume"] if p.action == "resume" else []), standalone_mode=False)
    if not _main_process():
        return []
    cfg = plans[-1].cfg
    epochs = cfg.optim.epochs
    title = (
        f"{cfg.model.backbone}, {cfg.data.dataset} {cfg.data.protocol} {cfg.data.stream}, "
        f"{epochs} epoch{'s' * (epochs != 1)}"
    )
    results = [read_result(p.variant.label, p.seed, p.work_dir) for p in plans]
    for path in write_ablation(out, results, [v.label for v in VARIANTS], title):
        click.echo(f"wrote {path}")
    return results


@dataclass(frozen=True)
class PlannedRun:
    variant: Variant
    seed: int
    work_dir: Path
    argv: list[str]  # for `mmcl train`
    cfg: object  # the resolved TrainConfig
    action: str  # "done", "resume" or "train"


def plan_runs(cache: str, seeds: int, out: Path, train_args: list[str]) -> list[PlannedRun]:
    """Resolve every run's config (checking they differ only in VARYING) and what each needs."""
    full = resolve(_argv(cache, VARIANTS[-1], 1, out, train_args))
    pinned = [] if _given(train_args, "--recipe") else ["--recipe", full.recipe]
    if full.data.features and not _given(train_args, "--features"):
        pinned += ["--features", full.data.features]
    plans, reference = [], None
    for variant in VARIANTS:
        for seed in range(1, seeds + 1):
            argv = _argv(cache, variant, seed, out, pinned + train_args)
            cfg = resolve(argv)
            fixed = {k: v for k, v in cfg.to_dict().items() if k not in VARYING}
            if reference is None:
                reference = fixed
            elif fixed != reference:
                changed = sorted(k for k in fixed if fixed[k] != reference.get(k))
                raise MMCLError(
                    f"mmcl ablate: {variant.label} seed {seed} would train with other settings "
                    f"than {VARIANTS[0].label} ({', '.join(changed)}); set them explicitly"
                )
            work_dir = Path(cfg.work_dir)
            plans.append(PlannedRun(variant, seed, work_dir, argv, cfg, run_state(work_dir, cfg)))
    return plans


def _argv(cache: str, variant: Variant, seed: int, out: Path, train_args: list[str]) -> list[str]:
    work_dir = out / variant.folder / f"seed-{seed}"
    return ["--cache", str(cache), "--work-dir", str(work_dir), "--seed", str(seed), *variant.flags, *train_args]


def _given(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def resolve(argv: list[str]):
    """The TrainConfig `mmcl train ARGV` would run with (bad flags: click's usage error)."""
    ctx = cli.train.make_context("mmcl train", list(argv))  # a bad flag: usage of the command it goes to
    return cli.resolve_train(**ctx.params)[0]


def run_state(work_dir: Path, cfg) -> str:
    from ..training.config import TrainConfig, load_config_file

    saved_path = work_dir / "config.yaml"
    if not saved_path.exists():
        return "train"
    try:
        saved = TrainConfig.from_dict(load_config_file(saved_path))
    except MMCLError:
        return "train"  # written by another version of the toolkit: train afresh
    if _comparable(saved) != _comparable(cfg):
        return "train"
    summary = work_dir / "eval" / "summary.json"
    if summary.exists() and summary.stat().st_mtime >= saved_path.stat().st_mtime:
        try:
            if json.loads(summary.read_text()).get("epoch") == cfg.optim.epochs:
                return "done"
        except ValueError:
            pass
    return "resume" if (work_dir / "last.pt").exists() else "train"


def _comparable(cfg) -> dict:
    # The folder is the run's identity; its spelling (relative, absolute) is not a setting.
    return {k: v for k, v in cfg.to_dict().items() if k != "work_dir"}


def read_result(variant: str, seed: int, work_dir: Path) -> RunResult:
    eval_dir = work_dir / "eval"
    try:
        summary = json.loads((eval_dir / "summary.json").read_text())
        with (eval_dir / "per_class.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        per_class = np.array([float(r["accuracy"]) if r["accuracy"] else np.nan for r in rows])
        return RunResult(
            variant,
            seed,
            float(summary["top1"]),
            float(summary["mean_class_accuracy"]),
            per_class,
            [r["name"] for r in rows],
            work_dir,
        )
    except (OSError, ValueError, KeyError) as e:
        raise MMCLError(f"{eval_dir}: cannot read the run's evaluation ({e})") from None


def _main_process() -> bool:
    """Under `accelerate launch` every process trains; one writes the tables."""
    import os

    return int(os.environ.get("RANK", "0")) == 0


def main() -> None:
    run(ablate)


if __name__ == "__main__":  # `accelerate launch -m stage2_train.ablation.ablate ...`
    main()
