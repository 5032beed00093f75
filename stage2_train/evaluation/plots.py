"""The figures a run writes: the confusion matrix of each report and the training curves.

Both are built as matplotlib figures (`confusion_figure`, `curves_figure`, tested on their
contents) and saved as PNG files without a display. The confusion matrix shows each cell's
percentage of its true class, with the run (dataset, protocol, stream, split) and its top-1 in the
title; at many classes the names give way to indices and the numbers shrink, so 60 and 120
classes stay legible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NAMED_UP_TO = 60  # classes; beyond, the axes show indices (per_class.csv holds the names)
CURVES = ("loss", "train_top1", "val_top1", "test_top1")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def confusion_figure(confusion: np.ndarray, class_names: list[str], title: str):
    plt = _pyplot()
    c = len(class_names)
    rate = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.3 * c, 40)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(100 * rate, cmap="Blues", vmin=0, vmax=100)  # %, as the cells
    labels = class_names if c <= NAMED_UP_TO else [str(i) for i in range(c)]
    ticks = max(4.0, min(8.0, 420 / c))
    ax.set_xticks(range(c), labels, rotation=90, fontsize=ticks)
    ax.set_yticks(range(c), labels, fontsize=ticks)
    cells = max(3.5, min(9.0, 300 / c))
    for t, p in zip(*np.nonzero(confusion)):  # empty cells stay blank, so the pattern shows
        ax.text(
            p,
            t,
            f"{100 * rate[t, p]:.0f}",
            ha="center",
            va="center",
            fontsize=cells,
            color="white" if rate[t, p] > 0.5 else "black",
        )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (cells: % of the true class)")
    ax.set_title(title, fontsize=max(9.0, min(14.0, size * 1.2)))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of the true class")
    fig.tight_layout()
    return fig


def confusion_title(meta: dict[str, Any], top1: float, num_samples: int) -> str:
    """`<run folder>: <dataset> <protocol> <stream>, <split>: top-1 ...`; a zero-shot report names the
    model's dataset and the target, and whether FRM refined the scores."""
    where = " ".join(str(meta[k]) for k in ("dataset", "protocol", "stream") if meta.get(k))
    if meta.get("target"):  # zero-shot: a model of one dataset on another
        where = f"{meta.get('trained_on')} {meta.get('stream')} model on {meta['target']}"
    split = str(meta.get("split", "test"))
    split = split if split.endswith(("split", "samples")) else f"{split} split"
    refined = ", scores refined by FRM" if meta.get("scores") == "refined" else ""
    run = f"{Path(meta['checkpoint']).parent.name}: " if meta.get("checkpoint") else ""
    return f"{run}{where}, {split}{refined}: top-1 {100 * top1:.2f} % ({num_samples} samples)"


def curves_figure(rows: list[dict[str, Any]], title: str):
    """Loss (left) and top-1 per split (right) against the epoch, from metrics.jsonl's rows."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (loss, top1) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in rows]
    for key in ("loss", "loss_ce", "loss_refine", "loss_align"):
        if any(key in r for r in rows):
            loss.plot(epochs, [r.get(key, np.nan) for r in rows], marker="o", label=key)
    for key in CURVES[1:]:
        if any(key in r for r in rows):
            top1.plot(epochs, [100 * r.get(key, np.nan) for r in rows], marker="o", label=key)
    loss.set(xlabel="epoch", ylabel="training loss")
    top1.set(xlabel="epoch", ylabel="top-1 %", ylim=(0, 100))
    for ax in (loss, top1):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def save(fig, path: Path) -> None:
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
