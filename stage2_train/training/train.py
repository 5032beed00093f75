"""The training loop: CTR-GCN with MMCL's FAM and FRM heads, from a skeleton + feature cache.

`train(cfg)` reads top to bottom: set up (accelerator, data, model, optimiser), then per epoch
train, validate, checkpoint and log, then evaluate the last epoch on the test split (and on the
validation split, when one is held out). Runs on the CPU, one GPU, or several with
`accelerate launch` (DDP; the batch size is the global batch).
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed

from shared.progress import progress_bar
from shared.errors import MMCLError

from .checkpoint import Checkpoint, rng_state, set_rng_state
from .config import TrainConfig, save_config
from .precision import MixedPrecision
from ..evaluation.evaluate import predict_scores, summarize, write_report
from ..models.losses import LOSS_METRICS, mmcl_loss
from ..models.mmcl_model import MMCLModel
from ..models.model_spec import spec_from_run
from .published_weights import PublishedWeights, load_weights
from .recipe_fit import collapse_warnings
from .run_data import Data, build_data, report_data
from .run_log import RunLog
from .run_report import print_summary, report_dir, run_meta, selected_figures
from .divergence import check_finite
from .weight_transfer import load_matching_weights
from .work_dir import checkpoint_dir, last_checkpoint, new_work_dir, prune_checkpoints, work_dir_lock

# --------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig, resume: Checkpoint | None = None) -> dict[str, Any]:
    """Train (or continue the checkpoint `resume`) and evaluate; returns the test summary."""
    acc, precision = make_accelerator(cfg)
    if cfg.work_dir is None:
        cfg = cfg.replace(work_dir=str(new_work_dir(cfg, acc)))
    with work_dir_lock(Path(cfg.work_dir), acc):
        return run(cfg, acc, precision, resume)


def run(cfg: TrainConfig, acc: Accelerator, precision: MixedPrecision, resume: Checkpoint | None) -> dict[str, Any]:
    set_seed(cfg.seed)
    data = build_data(cfg, acc)
    report_data(cfg, data, acc)
    model = build_model(cfg, data)
    optimizer, scheduler = build_optimizer(cfg, model, len(data.train_loader))
    start = restore(resume, model, optimizer, scheduler, precision) if resume else init_weights(cfg, model, acc)
    if cfg.compile != "no":  # in place: parameter names, hence checkpoints, stay the eager model's
        model.compile(backend=cfg.compile)
    model, optimizer, train_loader, *eval_loaders = acc.prepare(
        model, optimizer, data.train_loader, data.val_loader, data.test_loader
    )
    val_loader, test_loader = eval_loaders
    log = RunLog(
        Path(cfg.work_dir),
        acc,
        start,
        title=f"{cfg.data.dataset} {cfg.data.protocol} {cfg.data.stream} ({cfg.work_dir})",
    )
    if acc.is_main_process:
        save_config(cfg, Path(cfg.work_dir) / "config.yaml")
    for epoch in range(start, cfg.optim.epochs):
        metrics = train_one_epoch(
            cfg,
            acc,
            precision,
            model,
            optimizer,
            train_loader,
            data,
            epoch,
            log,
            scheduler if cfg.optim.per_step else None,
        )
        if val_loader is not None:
            metrics |= prefixed("val", evaluate(model, val_loader, data, acc, "validate"))
        if cfg.test_every and (epoch + 1) % cfg.test_every == 0:
            metrics |= prefixed("test", evaluate(model, test_loader, data, acc, "test"))
        check_finite(acc.unwrap_model(model), metrics, epoch + 1, cfg)
        if not cfg.optim.per_step:
            scheduler.step()
        # The row first: a kill before the checkpoint is in place redoes the epoch on --resume
        # (RunLog drops rows past the checkpoint), so no epoch ever lacks its row.
        log.write(epoch + 1, metrics)
        write_checkpoint(cfg, acc, precision, model, optimizer, scheduler, data, epoch + 1, metrics)
    return finish(cfg, acc, model, {"val": val_loader, "test": test_loader}, data, log)


# --------------------------------------------------------------------------- setup


def make_accelerator(cfg: TrainConfig) -> tuple[Accelerator, MixedPrecision]:
    """The accelerator (devices, processes, batches), built in float32, and the run's precision
    (cfg.mixed_precision, resolved by config.finalize_config), which the run applies itself."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise MMCLError("--device cuda: no CUDA device is available (use --device cpu)")
    precision = cfg.mixed_precision
    try:
        acc = Accelerator(
            cpu=cfg.device == "cpu",
            mixed_precision="no",
            # batch_size is the global batch, split over the processes as
            # the reference's DataParallel does.
            dataloader_config=DataLoaderConfiguration(split_batches=True),
        )
        mixed = MixedPrecision.for_device(precision, acc.device)
    except (ValueError, RuntimeError) as e:
        raise MMCLError(f"--mixed-precision {precision} / --device {cfg.device}: {e}") from None
    for size in (cfg.optim.batch_size, cfg.optim.eval_batch_size):
        if size % acc.num_processes:
            raise MMCLError(
                f"batch size {size} does not split over {acc.num_processes} processes; "
                f"choose a multiple of {acc.num_processes}"
            )
    return acc, mixed


def build_model(cfg: TrainConfig, data: Data) -> MMCLModel:
    f = data.features
    return MMCLModel(
        cfg.model.model_config(
            num_class=len(data.class_names),
            layout=data.layout.name,
            num_point=data.layout.num_joints,
            num_person=data.num_person,
            rgb_dim=f.rgb_dim if f is not None else None,
            text_dim=f.text_dim if f is not None else None,
        )
    )


def build_optimizer(cfg: TrainConfig, model: torch.nn.Module, steps_per_epoch: int):
    """SGD and its schedule: stepped each epoch by the loop (schedule step) or each optimisation step
    by train_one_epoch (cosine; its state counts steps, so --resume continues it exactly)."""
    o = cfg.optim
    optimizer = torch.optim.SGD(
        model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    # lambdas, not bound methods: LambdaLR's state then holds no schedule of its own
    if o.per_step:
        spe = max(1, steps_per_epoch)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: o.lr_factor_at(it, spe))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: o.lr_factor(epoch))
    return optimizer, scheduler


def restore(ckpt: Checkpoint, model, optimizer, scheduler, precision: MixedPrecision) -> int:
    """Continue a checkpoint exactly: weights, optimiser, schedule, loss scale and RNG states."""
    model.load_state_dict(ckpt.model)
    optimizer.load_state_dict(ckpt.optimizer)
    scheduler.load_state_dict(ckpt.scheduler)
    if precision.scaler is not None and ckpt.scaler:
        precision.scaler.load_state_dict(ckpt.scaler)
    set_rng_state(ckpt.rng)
    return ckpt.epoch


def init_weights(cfg: TrainConfig, model: MMCLModel, acc: Accelerator) -> int:
    """A fresh run; --init-from copies every tensor whose name and shape match (fine-tuning to
    new classes leaves the classifier freshly initialised; see weight_transfer.plan_transfer)."""
    if last_checkpoint(cfg.work_dir).exists():
        acc.print(
            f"warning: {cfg.work_dir} holds an earlier run, which this one overwrites (--resume continues it instead)"
        )
    if cfg.init_from is None:
        return 0
    source = load_weights(cfg.init_from)  # ours, or a published CTR-GCN / pyskl checkpoint
    transfer = load_matching_weights(model, source.model)
    notes = source.notes() if isinstance(source, PublishedWeights) else []
    acc.print("\n".join([*notes, *transfer.report(cfg.init_from)]))
    return 0


# --------------------------------------------------------------------------- one epoch


def augment_generator(cfg: TrainConfig, acc: Accelerator, epoch: int) -> torch.Generator:
    """Augmentation randomness from (seed, epoch, process) alone, so a resumed epoch replays it."""
    seed = (cfg.seed * 1_000 + epoch) * 1_000 + acc.process_index
    return torch.Generator(device=acc.device).manual_seed(seed)


def train_one_epoch(
    cfg: TrainConfig,
    acc: Accelerator,
    precision: MixedPrecision,
    model,
    optimizer,
    loader,
    data: Data,
    epoch: int,
    log: RunLog,
    step_scheduler=None,
) -> dict[str, float]:
    """One pass over the training loader; `step_scheduler` (a per-step schedule) steps after each update."""
    model.train()
    loader.set_epoch(epoch)
    generator = augment_generator(cfg, acc, epoch)
    sums: dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=acc.device))
    start, seen, lr = time.perf_counter(), 0, optimizer.param_groups[0]["lr"]
    bar = progress_bar(
        loader, desc=f"epoch {epoch + 1}/{cfg.optim.epochs}", disable=not acc.is_main_process, leave=False
    )
    for step, batch in enumerate(bar):
        out = precision.forward(
            model,
            data.train_input(batch, generator),
            rgb=batch.get("rgb"),
            text=batch.get("text"),
            label=batch["label"],
        )
        parts = mmcl_loss(
            out.logits,
            batch["label"],
            cfg.loss,
            refined=out.refined,
            text_valid=batch.get("text_valid"),
            feature=out.feature,
            rgb_proj=out.rgb_proj,
            rgb_valid=batch.get("rgb_valid"),
            backbone_loss=out.backbone_loss,
        )
        optimizer.zero_grad(set_to_none=True)
        precision.backward(parts.total, acc)
        lr = optimizer.param_groups[0]["lr"]  # this step's (a per-step schedule sets the next one's)
        precision.step(optimizer)
        if step_scheduler is not None:
            step_scheduler.step()
        n = len(batch["label"])
        for name, value in parts.metrics().items():
            sums[name] += value.detach().float() * n
        sums["correct"] += (out.logits.argmax(1) == batch["label"]).sum()
        sums["n"] += n
        sums["frm_samples"] += parts.n_valid_text
        sums["fam_samples"] += parts.n_valid_rgb  # already counted over all processes
        seen += n * acc.num_processes
        if step % cfg.log_every == 0 or step == len(loader) - 1:  # .item() waits for the device: not every step
            speed = seen / (time.perf_counter() - start)
            # the bar: the epoch's running mean (one step's loss jumps); the log: this step's parts
            bar.set_postfix(mean_loss=f"{(sums['loss'] / sums['n']).item():.3f}", samples_s=f"{speed:.3g}")
            log.step(
                epoch * len(loader) + step + 1,
                epoch + 1,
                {**{name: value.item() for name, value in parts.metrics().items()}, "lr": lr},
            )
    totals = {k: float(acc.reduce(v, reduction="mean" if k == "fam_samples" else "sum")) for k, v in sums.items()}
    n = max(totals["n"], 1)
    return {
        **{name: totals[name] / n for name in LOSS_METRICS},
        "train_top1": totals["correct"] / n,
        # samples that entered FAM's and FRM's terms (the others lack features)
        "fam_samples": int(totals["fam_samples"]),
        "frm_samples": int(totals["frm_samples"]),
        "lr": lr,
        "samples_per_s": seen / (time.perf_counter() - start),
    }


def evaluate(model, loader, data: Data, acc: Accelerator, desc: str) -> dict[str, float]:
    s = predict_scores(model, loader, data.test_input, acc, data.skeletons.names, desc)
    summary = summarize(s, data.class_names)
    return {k: summary[k] for k in ("top1", "top5", "mean_class_accuracy")}


def prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in metrics.items()}


# --------------------------------------------------------------------------- checkpoints and logs


def write_checkpoint(
    cfg, acc, precision: MixedPrecision, model, optimizer, scheduler, data: Data, epoch: int, metrics
) -> None:
    """checkpoints/epoch-NNN.pt and <work dir>/last.pt: the full training state plus provenance."""
    acc.wait_for_everyone()
    if not acc.is_main_process:
        return
    net = acc.unwrap_model(model)
    ckpt = Checkpoint(
        spec=spec_from_run(cfg, net.config, data),
        epoch=epoch,
        config=cfg.to_dict(),
        model=net.state_dict(),
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        scaler=precision.scaler.state_dict() if precision.scaler is not None else None,
        rng=rng_state(),
        metrics=metrics,
        skeletons_names_hash=data.skeletons.names_hash,
    )
    ckpt.save(checkpoint_dir(cfg.work_dir) / f"epoch-{epoch:03d}.pt")
    ckpt.save(last_checkpoint(cfg.work_dir))
    prune_checkpoints(cfg.work_dir, epoch, cfg.keep_checkpoints)


# --------------------------------------------------------------------------- the end


def finish(
    cfg: TrainConfig, acc: Accelerator, model, loaders: dict[str, Any], data: Data, log: RunLog
) -> dict[str, Any]:
    """Evaluate the last epoch's model on each split with a loader (test; val when held out) and
    write one report per split; returns the test summary."""
    scores = {
        split: predict_scores(model, loader, data.test_input, acc, data.skeletons.names, split)
        for split, loader in loaders.items()
        if loader is not None
    }
    if not acc.is_main_process:
        return {}
    summaries = {}
    for split, s in scores.items():
        features = data.features.name if data.features is not None else None
        meta = run_meta(
            cfg,
            data.skeletons.dataset,
            features,
            split,
            epoch=cfg.optim.epochs,
            checkpoint=last_checkpoint(cfg.work_dir),
        )
        if split == "test":
            meta |= selected_figures(log.rows)
        warnings = collapse_warnings(s.scores, s.labels, data.class_names, split)
        out_dir = report_dir(cfg.work_dir, split)
        summaries[split] = write_report(out_dir, s, data.class_names, meta | {"warnings": warnings})
        print_summary(summaries[split], out_dir)
        for line in warnings:
            acc.print(line)
    test = summaries["test"]
    log.hyperparameters(cfg.to_dict(), {"test_top1": 100 * test["top1"], "test_top5": 100 * test["top5"]})
    log.close()
    return summaries["test"]
