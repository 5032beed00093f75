"""Multi-stream ensemble: a weighted sum of the score files of several streams.

A score file is what `mmcl train` writes into `<work dir>/eval/` (and, with --val-split, the
validation split's into `eval-val/`; `mmcl test` into a folder of its own): `scores.npz` (names,
labels, scores, class_names; the stream comes from the `summary.json` beside it), or CTR-GCN's
`scores.pkl` ({sample name: score vector}); `score_files` reads and aligns them. A work dir given
for the test files means its eval/, given to --search its eval-val/.

Weights: J:B:JM:BM = 2:2:1:1 when the four streams are given (CTR-GCN's ensemble), otherwise
equal; `--weights` overrides; `--search` picks them by top-1 on validation score files and applies
them to the test files (`--search-val`: each work dir's own eval-val/; validation and test files
pair by backbone and stream, so the paper's six streams, CTR-GCN J/B/JM/BM + HD-GCN J/B, fuse in
one command). Scores are summed as stored (logits), as the reference does.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np

from shared.progress import progress_bar
from shared.cache_io import atomic_path, make_folder
from shared.errors import MMCLError

from .evaluate import topk_accuracy
from ..training.run_dirs import new_run_dir, point_latest
from .score_files import Aligned, ScoreSet, align, cache_labels, load_score_file, stream_label

# CTR-GCN's ensemble weights per stream (joint, bone, joint motion, bone motion).
DEFAULT_STREAM_WEIGHTS: dict[str, float] = {"joint": 2.0, "bone": 2.0, "joint-motion": 1.0, "bone-motion": 1.0}


# --------------------------------------------------------------------------- weights and fusion


@dataclass(frozen=True)
class Weights:
    values: tuple[float, ...]
    source: str  # how they were chosen, for the report


def default_weights(streams: list[str | None]) -> Weights:
    """2:2:1:1 for exactly the four streams (matched by each file's stream), else equal."""
    if sorted(s or "" for s in streams) == sorted(DEFAULT_STREAM_WEIGHTS):
        return Weights(
            tuple(DEFAULT_STREAM_WEIGHTS[s] for s in streams),
            "default J:B:JM:BM = 2:2:1:1 (streams from the files' metadata)",
        )
    return Weights((1.0,) * len(streams), "equal (not exactly the four streams joint, bone, joint-motion, bone-motion)")


def parse_weights(text: str, count: int) -> Weights:
    try:
        values = tuple(float(w) for w in text.replace(":", ",").split(",") if w.strip())
    except ValueError:
        raise MMCLError(f"--weights {text!r}: expected numbers like 2,2,1,1") from None
    if len(values) != count:
        raise MMCLError(f"--weights {text!r}: {len(values)} weights for {count} score files")
    check_weights(values, "--weights")
    return Weights(values, "given (--weights)")


def check_weights(values, what: str) -> None:
    w = np.asarray(values, dtype=np.float64)
    if not np.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise MMCLError(f"{what}: weights must be finite, non-negative and not all zero")


def fuse(scores: np.ndarray, weights) -> np.ndarray:
    """(K, N, C) scores, K weights -> (N, C) weighted sum."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), scores.astype(np.float64), axes=1)


def accuracy(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {"top1": topk_accuracy(scores, labels, 1), "top5": topk_accuracy(scores, labels, 5)}


# --------------------------------------------------------------------------- weight search


@dataclass(frozen=True)
class SearchConfig:
    grid: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)  # candidate values of each weight
    max_candidates: int = 50_000
    chunk_bytes: int = 256 * 2**20  # memory for the fused scores of one chunk of candidates


@dataclass
class SearchResult:
    weights: tuple[float, ...]
    val_top1: float
    val_top5: float
    start_val_top1: float  # of the weights the search started from
    num_candidates: int
    pairing: str  # how validation files were matched to test files
    val_files: list[str] = field(default_factory=list)


def candidate_weights(count: int, grid: tuple[float, ...], start: tuple[float, ...], limit: int) -> np.ndarray:
    """Every combination of grid values, without the all-zero one and scaled duplicates (w and
    2w rank classes alike); `start` first, so it wins ties."""
    if len(grid) ** count > limit:
        raise MMCLError(
            f"--search: {len(grid)}^{count} weight combinations exceed {limit}; "
            f"use a smaller --grid or fewer score files"
        )
    seen: set[tuple[float, ...]] = set()
    out = []
    for w in itertools.chain([start], itertools.product(grid, repeat=count)):
        w = np.asarray(w, dtype=np.float64)
        if not (w > 0).any():
            continue
        key = tuple(np.round(w / w.max(), 9))
        if key not in seen:
            seen.add(key)
            out.append(w)
    return np.stack(out)


def search_weights(val: Aligned, start: Weights, cfg: SearchConfig = SearchConfig()) -> tuple[Weights, SearchResult]:
    """The candidate with the best validation top-1 (ties: top-5, then the earlier candidate)."""
    k, n, c = val.scores.shape
    candidates = candidate_weights(k, cfg.grid, start.values, cfg.max_candidates)
    flat = val.scores.reshape(k, n * c).astype(np.float32)
    per_chunk = max(1, cfg.chunk_bytes // (n * c * 4))
    top1 = np.empty(len(candidates))
    top5 = np.empty(len(candidates))
    for a in progress_bar(
        range(0, len(candidates), per_chunk), desc="weight search", leave=False, disable=len(candidates) <= per_chunk
    ):
        fused = (candidates[a : a + per_chunk].astype(np.float32) @ flat).reshape(-1, n, c)
        for j, f in enumerate(fused):
            top1[a + j], top5[a + j] = topk_accuracy(f, val.labels, 1), topk_accuracy(f, val.labels, 5)
    best = int(np.lexsort((np.arange(len(candidates)), -top5, -top1))[0])
    weights = tuple(float(w) for w in candidates[best])
    result = SearchResult(
        weights,
        float(top1[best]),
        float(top5[best]),
        float(top1[0]),
        len(candidates),
        "",
        [str(s.path) for s in val.sets],
    )
    return Weights(
        weights,
        f"searched on the validation split ({len(candidates)} candidates, grid "
        f"{', '.join(f'{g:g}' for g in cfg.grid)})",
    ), result


def pair_validation(test: list[ScoreSet], val: list[ScoreSet]) -> tuple[list[ScoreSet], str]:
    """Order the validation sets like the test sets: by stream (and backbone, where the files say
    one: the paper's six streams hold joint and bone twice) when every test file names a distinct
    one, else by position."""
    if len(val) != len(test):
        raise MMCLError(
            f"--search: {len(val)} validation score files for {len(test)} test files; give one per test file"
        )
    t_keys, v_keys = [s.label for s in test], [s.label for s in val]
    if None not in [s.stream for s in test] and len(set(t_keys)) == len(t_keys):
        if sorted(t_keys) != sorted(v_keys):
            raise MMCLError(
                f"--search: the validation files' streams ({', '.join(v_keys)}) differ "
                f"from the test files' ({', '.join(t_keys)})"
            )
        by_key = {s.label: s for s in val}
        several = len({s.backbone or "ctrgcn" for s in test}) > 1
        return [by_key[k] for k in t_keys], "by backbone and stream" if several else "by stream"
    return list(val), "by position (streams unknown or repeated)"


# --------------------------------------------------------------------------- the whole command


@dataclass
class EnsembleResult:
    summary: dict[str, Any]
    fused: np.ndarray  # (N, C)
    aligned: Aligned


def run_ensemble(
    paths: list[str | Path],
    weights: str | None = None,
    search: list[str | Path] | None = None,
    cache: str | Path | None = None,
    search_cfg: SearchConfig = SearchConfig(),
) -> EnsembleResult:
    """Fuse the score files at `paths`; see the module doc for weights and `search`."""
    if weights is not None and search:
        raise MMCLError("--weights and --search exclude each other: give weights, or search for them")
    labels_by_name, cache_desc = cache_labels(cache) if cache is not None else (None, "--cache")
    test = align([load_score_file(p) for p in paths], labels_by_name, cache_desc)
    chosen = parse_weights(weights, len(paths)) if weights is not None else default_weights(test.streams)
    search_result = None
    if search:
        val_sets, pairing = pair_validation(test.sets, [load_score_file(p, "val") for p in search])
        val = align(val_sets, labels_by_name, cache_desc)
        overlap = set(val.names) & set(test.names)
        if overlap:
            raise MMCLError(
                f"--search: the validation files share {len(overlap)} samples with the test files "
                f"(e.g. {sorted(overlap)[0]}); search on a held-out validation split "
                f"(`mmcl train --val-split`), never on the test split"
            )
        chosen, search_result = search_weights(val, chosen, search_cfg)
        search_result.pairing = pairing
    fused = fuse(test.scores, chosen.values)
    summary = {
        "num_samples": len(test.names),
        "num_classes": int(test.scores.shape[2]),
        "labels_from": test.labels_from,
        "weights": list(chosen.values),
        "weights_source": chosen.source,
        "streams": [
            {"path": str(s.path), "stream": s.stream, "backbone": s.backbone, "weight": w, **accuracy(sc, test.labels)}
            for s, w, sc in zip(test.sets, chosen.values, test.scores)
        ],
        "fused": accuracy(fused, test.labels),
        "search": None if search_result is None else asdict(search_result),
    }
    return EnsembleResult(summary, fused, test)


def write_summary(summary: dict[str, Any], out: Path) -> None:
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")


def save_fused(result: EnsembleResult, out: Path) -> None:
    """The fused scores in the same .npz layout as one stream's scores (so they can be re-fused)."""
    a = result.aligned
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as f:
            np.savez(
                f,
                names=np.array(a.names),
                labels=a.labels,
                scores=result.fused.astype(np.float32),
                **({"class_names": np.array(a.class_names)} if a.class_names else {}),
            )


def format_summary(summary: dict[str, Any]) -> str:
    rows = [
        f"ensemble of {len(summary['streams'])} score files: {summary['num_samples']} samples, "
        f"{summary['num_classes']} classes",
        f"  {'stream':<19} {'weight':>6}  {'top-1':>7}  {'top-5':>7}  file",
    ]
    for s in summary["streams"]:
        label = stream_label(s["stream"], s.get("backbone"))
        rows.append(f"  {label:<19} {s['weight']:>6g}  {100 * s['top1']:>6.2f}%  {100 * s['top5']:>6.2f}%  {s['path']}")
    f = summary["fused"]
    rows.append(f"  {'fused':<19} {'':>6}  {100 * f['top1']:>6.2f}%  {100 * f['top5']:>6.2f}%")
    rows.append(f"weights: {summary['weights_source']}")
    s = summary["search"]
    if s is not None:
        rows.append(
            f"  chosen on validation ({len(s['val_files'])} files, paired {s['pairing']}): val top-1 "
            f"{100 * s['val_top1']:.2f}% (starting weights: {100 * s['start_val_top1']:.2f}%); "
            f"the test figures above use these weights"
        )
    return "\n".join(rows)


def new_ensemble_dir() -> Path:
    """runs/ensemble-<time>/ (a new one per call) and runs/ensemble-latest pointing at it."""
    folder = new_run_dir("ensemble", "")
    make_folder(folder, exist_ok=False)
    point_latest(folder, "ensemble")
    return folder


@click.command()
@click.argument("score_files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--weights",
    help="One weight per score file, e.g. 2,2,1,1 (default: 2:2:1:1 for "
    "J:B:JM:BM when the four streams are given, else equal).",
)
@click.option(
    "--search",
    "search",
    multiple=True,
    type=click.Path(),
    help="A validation-split score file (or work dir: its eval-val/) per test file (repeat): "
    "choose the weights by validation top-1 on a small grid, then apply them to the test files.",
)
@click.option(
    "--search-val",
    is_flag=True,
    help="--search with each work dir given: its own eval-val/ (training with --val-split), "
    "e.g. the paper's six streams in one command (README, Backbones).",
)
@click.option("--grid", default="0,0.5,1,1.5,2", show_default=True, help="Weight values tried by --search.")
@click.option("--cache", type=click.Path(), help="Cache the scores were computed on (labels for .pkl files).")
@click.option(
    "--out",
    type=click.Path(),
    help="JSON summary (default: a new runs/ensemble-<time>/ensemble.json, "
    "linked from runs/ensemble-latest; never the current folder).",
)
@click.option("--save-scores", type=click.Path(), help="Also write the fused scores (.npz).")
def ensemble(
    score_files: tuple[str, ...],
    weights: str | None,
    search: tuple[str, ...],
    search_val: bool,
    grid: str,
    cache: str | None,
    out: str | None,
    save_scores: str | None,
) -> None:
    """Fuse the scores of several streams (files or work dirs) and report top-1/top-5."""
    if search_val:
        if search:
            raise MMCLError("--search-val searches on the work dirs' own eval-val/: give it or --search, not both")
        search = score_files
    try:
        grid_values = tuple(float(g) for g in grid.split(",") if g.strip())
    except ValueError:
        raise MMCLError(f"--grid {grid!r}: expected numbers like 0,0.5,1,2") from None
    check_weights(grid_values, "--grid")
    result = run_ensemble(list(score_files), weights, list(search), cache, SearchConfig(grid=grid_values))
    out_path = Path(out) if out else new_ensemble_dir() / "ensemble.json"
    write_summary(result.summary, out_path)
    if save_scores:
        save_fused(result, Path(save_scores))
    click.echo(format_summary(result.summary))
    click.echo(f"summary: {out_path}" + (f"; fused scores: {save_scores}" if save_scores else ""))
