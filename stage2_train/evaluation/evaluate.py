"""Scores on a split and the report written from them.

`predict_scores` runs the skeleton classifier (S_M; FAM/FRM are training-only) over a loader,
across processes when distributed. `write_report` writes into one folder:

    summary.json     top-1, top-5, mean class accuracy, most-confused pairs, provenance
    per_class.csv    class, name, support, correct, accuracy
    confusion.csv    counts, rows = true class, columns = predicted class (with names)
    confusion.png    the row-normalised confusion matrix, % per cell (plots.confusion_figure)
    scores.npz       names, rows, labels, scores (N, C), class_names
    scores.pkl       {sample name: score vector}, the score file CTR-GCN's ensemble reads
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.csv_cells import SafeWriter
from shared.progress import progress_bar
from shared.cache_io import atomic_path, make_folder

from .plots import confusion_figure, confusion_title, save


@dataclass
class SplitScores:
    scores: np.ndarray  # (N, C) float32 logits S_M; with test_clips > 1 mean probabilities over the clips
    labels: np.ndarray  # (N,) int64
    rows: np.ndarray  # (N,) rows of the skeleton cache
    names: list[str]


@torch.no_grad()
def predict_scores(
    model, loader, pipeline, accelerator, sample_names: list[str], desc: str = "evaluate"
) -> SplitScores:
    """Scores of every sample in `loader` (test-time input pipeline), in loader order, in float32
    whatever precision training autocasts to: the logits `export` and `predict` give, or with
    `test_clips` > 1 the mean class probability over the clips (`pipeline.scores`)."""
    model.eval()  # the model itself: training's autocast is applied around it (training.precision)
    outs: list[tuple[torch.Tensor, ...]] = []
    bar = progress_bar(loader, desc=desc, leave=False, disable=not accelerator.is_main_process)
    for batch in bar:
        scores = pipeline.scores(model(pipeline(batch)).logits.float())
        outs.append(accelerator.gather_for_metrics((scores, batch["label"], batch["index"])))
    scores, labels, rows = (torch.cat(parts).cpu().numpy() for parts in zip(*outs))
    return SplitScores(
        scores.astype(np.float32), labels.astype(np.int64), rows.astype(np.int64), [sample_names[r] for r in rows]
    )


# --------------------------------------------------------------------------- metrics


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean()) if len(labels) else float("nan")


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_class: int) -> np.ndarray:
    return np.bincount(labels * num_class + predicted, minlength=num_class**2).reshape(num_class, num_class)


def most_confused(confusion: np.ndarray, class_names: list[str], top: int = 10) -> list[dict[str, Any]]:
    """The largest off-diagonal cells: true class, predicted class, count, share of the true class."""
    off = confusion.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    support = confusion.sum(axis=1)
    pairs = []
    for flat in order:
        t, p = divmod(int(flat), confusion.shape[0])
        if off[t, p] == 0:
            break
        pairs.append(
            {
                "true": class_names[t],
                "predicted": class_names[p],
                "count": int(off[t, p]),
                "share_of_true": float(off[t, p] / support[t]),
            }
        )
    return pairs


def summarize(s: SplitScores, class_names: list[str]) -> dict[str, Any]:
    predicted = s.scores.argmax(axis=1)
    confusion = confusion_matrix(s.labels, predicted, len(class_names))
    support = confusion.sum(axis=1)
    per_class = np.divide(np.diag(confusion), support, out=np.full(len(support), np.nan), where=support > 0)
    return {
        "num_samples": int(len(s.labels)),
        "top1": topk_accuracy(s.scores, s.labels, 1),
        "top5": topk_accuracy(s.scores, s.labels, 5),
        "mean_class_accuracy": float(np.nanmean(per_class)) if (support > 0).any() else float("nan"),
        "most_confused": most_confused(confusion, class_names),
        "_confusion": confusion,
        "_per_class": per_class,
    }


# --------------------------------------------------------------------------- files


def write_report(out_dir: Path, s: SplitScores, class_names: list[str], meta: dict[str, Any]) -> dict[str, Any]:
    """Write the evaluation files into `out_dir`; returns the JSON summary."""
    make_folder(out_dir)
    result = summarize(s, class_names)
    confusion, per_class = result.pop("_confusion"), result.pop("_per_class")
    _write_per_class(out_dir / "per_class.csv", confusion, per_class, class_names)
    _write_confusion_csv(out_dir / "confusion.csv", confusion, class_names)
    title = confusion_title(meta, result["top1"], result["num_samples"])
    save(confusion_figure(confusion, class_names, title), out_dir / "confusion.png")
    with atomic_path(out_dir / "scores.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                names=np.array(s.names),
                rows=s.rows,
                labels=s.labels,
                scores=s.scores,
                class_names=np.array(class_names),
            )
    with atomic_path(out_dir / "scores.pkl") as tmp:
        with open(tmp, "wb") as f:
            pickle.dump(dict(zip(s.names, s.scores)), f)
    summary = {**meta, **result}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write_per_class(path: Path, confusion: np.ndarray, per_class: np.ndarray, class_names: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = SafeWriter(f)
        w.writerow(["class", "name", "support", "correct", "accuracy"])
        for c, name in enumerate(class_names):
            acc = "" if np.isnan(per_class[c]) else f"{per_class[c]:.6f}"
            w.writerow([c, name, int(confusion[c].sum()), int(confusion[c, c]), acc])


def _write_confusion_csv(path: Path, confusion: np.ndarray, class_names: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = SafeWriter(f)
        w.writerow(["true \\ predicted", *class_names])
        for name, row in zip(class_names, confusion):
            w.writerow([name, *row.tolist()])
