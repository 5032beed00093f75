"""What a zero-shot run reports: per target class and per score set (S_M, and S_R with `--refine`),
the run's summary (`zeroshot.json`), `per_class.csv`, each score set's full report, and the lines
printed at the end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

from shared.cache_schema import SkeletonCache
from shared.csv_cells import SafeWriter
from shared.dataset_spec import DatasetSpec

from ..data.features import FeatureArrays
from ..evaluation.evaluate import SplitScores, summarize, topk_accuracy, write_report
from ..training.checkpoint import Checkpoint
from .class_mapping import UNMAPPED, ClassMapping


def per_class(
    mapping: ClassMapping, target_labels: np.ndarray, sets: dict[str, SplitScores], skipped: np.ndarray
) -> list[dict[str, Any]]:
    """One row per target class: its counterpart, support and top-1/top-5 per score set.
    `target_labels` are the scored samples' target classes, in the score sets' order; `skipped`
    counts per target class the samples left out for want of a counterpart."""
    rows = []
    for t, c in enumerate(mapping.target):
        k = int(mapping.to_checkpoint[t])
        row: dict[str, Any] = {
            "target_class": t,
            "action": c.action,
            "name": c.name,
            "ntu_id": c.ntu_id,
            "checkpoint_class": k if k != UNMAPPED else None,
            "checkpoint_name": mapping.checkpoint_names[k] if k != UNMAPPED else None,
        }
        mine = target_labels == t
        row["support"] = int(mine.sum()) if k != UNMAPPED else 0
        row["skipped"] = int(skipped[t])
        for key, s in sets.items():
            for n in (1, 5):
                row[f"{key}_top{n}"] = topk_accuracy(s.scores[mine], s.labels[mine], n) if mine.any() else None
        rows.append(row)
    return rows


def write_per_class_csv(path: Path, rows: list[dict[str, Any]], sets: list[str]) -> None:
    """Every target class, mapped or not (ntu_id 'unmapped', no figures)."""
    columns = ["action", "name", "ntu_id", "checkpoint_class", "checkpoint_name", "support", "skipped"]
    columns += [f"{k}_top{n}" for k in sets for n in (1, 5)]

    def cell(row: dict[str, Any], column: str) -> str:
        value = row[column]
        if value is None:
            return "unmapped" if column == "ntu_id" else ""
        return f"{value:.6f}" if isinstance(value, float) else str(value)

    with open(path, "w", newline="") as f:
        w = SafeWriter(f)
        w.writerow(columns)
        w.writerows([cell(row, c) for c in columns] for row in rows)


def summarize_run(
    protocol: str | None,
    ckpt: Checkpoint,
    path: Path,
    target: SkeletonCache,
    spec: DatasetSpec,
    mapping: ClassMapping,
    sets: dict[str, SplitScores],
    features: FeatureArrays | None,
    classes: list[dict[str, Any]],
) -> dict[str, Any]:
    results = {}
    for key, s in sets.items():
        full = summarize(s, mapping.checkpoint_names)
        results[key] = {k: full[k] for k in ("num_samples", "top1", "top5", "mean_class_accuracy")}
    if features is not None:
        valid = features.text_valid[sets["skeleton"].rows]
        results["refined"] |= {
            "features": features.name,
            "refined_samples": int(valid.sum()),
            "unrefined_samples (no valid text, S_M kept)": int((~valid).sum()),
        }
    return {
        "checkpoint": str(path),
        "trained_on": ckpt.spec.dataset,
        "stream": ckpt.spec.input.stream,
        "epoch": ckpt.epoch,
        "target": spec.name,
        "cache": str(target.path),
        "split": "all samples" if protocol is None else f"{spec.protocol(protocol).name} test split",
        "scored_over": f"all {len(mapping.checkpoint_names)} classes of the checkpoint",
        "num_samples": len(sets["skeleton"].labels),
        "num_skipped_unmapped": int(sum(c["skipped"] for c in classes)),
        "results": results,
        "per_class": classes,
    }


def write_outputs(out: Path, summary: dict[str, Any], sets: dict[str, SplitScores], mapping: ClassMapping) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {k: summary[k] for k in ("checkpoint", "trained_on", "stream", "epoch", "target", "split")}
    for key, s in sets.items():
        write_report(out / key, s, mapping.checkpoint_names, {**meta, "scores": key})
    write_per_class_csv(out / "per_class.csv", summary["per_class"], list(sets))
    (out / "zeroshot.json").write_text(json.dumps(summary, indent=2) + "\n")


def print_summary(summary: dict[str, Any], out: Path) -> None:
    click.echo(
        f"zero-shot {summary['target']} with {summary['checkpoint']} ({summary['trained_on']}, "
        f"{summary['stream']}): {summary['num_samples']} samples of mapped classes "
        f"({summary['split']}; {summary['num_skipped_unmapped']} unmapped skipped), "
        f"{summary['scored_over']}"
    )
    labels = {"skeleton": "skeleton (S_M)", "refined": "FRM refined (S_R)"}
    click.echo(f"  {'':<20} {'top-1':>7} {'top-5':>7}")
    for key, r in summary["results"].items():
        click.echo(f"  {labels[key]:<20} {100 * r['top1']:>6.2f}% {100 * r['top5']:>6.2f}%")
    sets = list(summary["results"])
    for c in summary["per_class"]:
        if c["checkpoint_class"] is None:
            continue
        figures = "  ".join(f"{k} top-1 {100 * c[f'{k}_top1']:.1f}%" for k in sets if c[f"{k}_top1"] is not None)
        click.echo(f"  {c['name']} -> A{c['ntu_id']:03d} {c['checkpoint_name']}: {c['support']} samples  {figures}")
    click.echo(f"outputs: {out}")
