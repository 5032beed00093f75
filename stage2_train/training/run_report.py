"""A run's reports: where each split's report goes, what it says about the run, and the summary
printed at the end (`train.finish` and `mmcl test` write them with `evaluate.write_report`)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from shared.errors import MMCLError

from .config import TrainConfig

# A work dir's report folder per split. `mmcl ensemble --search` picks fusion weights on eval-val/
# and applies them to eval/, so the validation report must never land in eval/.
REPORT_DIRS = {"test": "eval", "val": "eval-val"}


def report_dir(work_dir: str | Path, split: str) -> Path:
    return Path(work_dir) / REPORT_DIRS[split]


SPLITS = tuple(REPORT_DIRS)


def evaluation_dir(work_dir: str | Path, what: str, when: float | None = None) -> Path:
    """Where an evaluation writes without --out: `<what>-<YYYYmmdd-HHMMSS>` (local time; `mmcl test`:
    eval-<split>, `mmcl zeroshot`: zeroshot-<target>), a folder of its own per evaluation, never the
    training report of REPORT_DIRS nor an earlier evaluation's."""
    base = Path(work_dir) / f"{what}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"
    path, n = base, 1
    while path.exists():  # two evaluations in the same second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def check_not_training_report(out: Path, work_dir: Path) -> None:
    """`mmcl test --out` may not overwrite the report training wrote (`mmcl ensemble` reads it)."""
    for split in SPLITS:
        if out.resolve() == report_dir(work_dir, split).resolve():
            raise MMCLError(
                f"--out {out}: that is the training report of {work_dir} ({split} split), which "
                f"`mmcl ensemble` reads; choose another folder (default: {work_dir}/eval-{split}-<time>)"
            )


def run_meta(
    cfg: TrainConfig, dataset: str, features: str | None, split: str, epoch: int, checkpoint: Path
) -> dict[str, Any]:
    """What a report says about the run it scores: data, model heads, epoch, checkpoint."""
    meta = {
        "dataset": dataset,
        "protocol": cfg.data.protocol,
        "stream": cfg.data.stream,
        "split": split,
        "epoch": epoch,
        "checkpoint": str(checkpoint),
        "features": features,
        "use_fam": cfg.model.use_fam,
        "use_frm": cfg.model.use_frm,
        "backbone": cfg.model.backbone,
        "test_clips": cfg.augment.test_clips,
    }  # > 1: the scores are mean probabilities (score_files)
    if split == "val":  # what recomputes the same held-out samples (`mmcl test --split val`)
        meta |= {"val_split": cfg.data.val_split, "val_seed": cfg.data.val_seed}
    return meta


def selected_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Best-epoch figures, each labelled with the split it was selected on."""
    out: dict[str, Any] = {}
    for split in ("val", "test"):
        scored = [r for r in rows if f"{split}_top1" in r and not math.isnan(r[f"{split}_top1"])]
        if scored:
            best = max(scored, key=lambda r: r[f"{split}_top1"])
            out[f"best_{split}_top1 (selected on {split})"] = best[f"{split}_top1"]
            out[f"best_{split}_epoch (selected on {split})"] = best["epoch"]
    return out


def print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    pct = {k: 100 * summary[k] for k in ("top1", "top5", "mean_class_accuracy")}
    print(
        f"{summary['split']} ({summary['num_samples']} samples, epoch {summary['epoch']}): "
        f"top-1 {pct['top1']:.2f} %, top-5 {pct['top5']:.2f} %, "
        f"mean class accuracy {pct['mean_class_accuracy']:.2f} %"
    )
    for key, value in summary.items():
        if "selected on" in key and "top1" in key:
            print(f"{key}: {100 * value:.2f} %")
    print(f"outputs: {out_dir}")
