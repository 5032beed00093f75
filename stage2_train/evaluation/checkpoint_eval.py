"""`mmcl test`: a trained checkpoint scored on the test split, or on the validation split its
training held out (recomputed from the saved fraction, seed and protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.errors import MMCLError

from ..training.checkpoint import Checkpoint
from ..training.config import TrainConfig
from .evaluate import predict_scores, write_report
from ..training.run_report import SPLITS, print_summary, run_meta
from ..training.run_data import build_data
from ..training.train import make_accelerator


def test_checkpoint(
    ckpt: Checkpoint, ckpt_path: Path, cfg: TrainConfig, out_dir: Path, split: str = "test"
) -> dict[str, Any]:
    """Evaluate a trained checkpoint on `cfg`'s cache/protocol/stream `split`: "test", or "val",
    the validation split training held out (recomputed from the saved fraction and seed)."""
    if split not in SPLITS:
        raise MMCLError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    if split == "val":
        check_val_recomputable(ckpt, ckpt_path, cfg)
    acc, _ = make_accelerator(cfg)  # evaluation runs in float32 whatever precision trained
    data = build_data(cfg.replace(use_fam=False, use_frm=False), acc)  # S_M alone
    if data.class_names != ckpt.spec.class_names:
        raise MMCLError(
            f"{ckpt_path} was trained on other classes ({ckpt.spec.dataset}) than {cfg.data.cache} "
            f"({data.skeletons.dataset}); use `mmcl zeroshot` for cross-dataset evaluation"
        )
    if split == "val" and ckpt.skeletons_names_hash not in (None, data.skeletons.names_hash):
        raise MMCLError(
            f"{data.skeletons.path} holds other samples than the cache {ckpt_path} was trained "
            f"on, so its validation split would not be the one training held out; evaluate "
            f"--split val on the training cache"
        )
    n = len(data.splits.val if split == "val" else data.splits.test)
    acc.print(
        f"evaluating {ckpt_path} (epoch {ckpt.epoch}) on {data.skeletons.dataset} {cfg.data.protocol} "
        f"{split} ({n} samples, {cfg.data.stream} stream), float32, skeletons alone"
    )
    model = acc.prepare(ckpt.build_model())
    loader = acc.prepare(data.val_loader if split == "val" else data.test_loader)
    scores = predict_scores(model, loader, data.test_input, acc, data.skeletons.names, split)
    if not acc.is_main_process:
        return {}
    summary = write_report(
        out_dir,
        scores,
        data.class_names,
        run_meta(cfg, data.skeletons.dataset, None, split, epoch=ckpt.epoch, checkpoint=ckpt_path),
    )
    print_summary(summary, out_dir)
    return summary


def check_val_recomputable(ckpt: Checkpoint, ckpt_path: Path, cfg: TrainConfig) -> None:
    """The validation split is a seeded draw from the training protocol's training samples: only
    the checkpoint's own fraction, seed and protocol give back the samples it never trained on."""
    saved = ckpt.train_config()
    if not saved.data.val_split:
        raise MMCLError(
            f"{ckpt_path} was trained without --val-split: it has no validation split "
            f"(train with --val-split F, or evaluate --split test)"
        )
    changed = [k for k in ("val_split", "val_seed", "protocol") if saved.get(k) != cfg.get(k)]
    if changed:
        detail = ", ".join(f"{k} {saved.get(k)!r} -> {cfg.get(k)!r}" for k in changed)
        raise MMCLError(
            f"--split val on {ckpt_path}: the validation split is defined by the training "
            f"settings, which differ here ({detail})"
        )
