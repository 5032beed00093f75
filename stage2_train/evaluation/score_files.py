"""Score files of trained streams: reading `scores.npz` / CTR-GCN's `scores.pkl`, finding them in a work
dir, and aligning several by sample name (their row orders may differ; they must cover exactly the
same samples). Labels come from the npz, the npz beside a pickle, or `--cache`.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import MMCLError
from shared.safe_pickle import load_plain

from ..training.run_report import REPORT_DIRS
from ..data.streams import STREAMS, canonical_stream

SCORE_NAMES = ("scores.npz", "scores.pkl")  # looked for in a work dir's eval/ or eval-val/ (then the dir itself)
SUMMARY_NAME = "summary.json"  # beside a score file: carries its stream

# --------------------------------------------------------------------------- score files


@dataclass
class ScoreSet:
    """One stream's scores on one split, rows in the file's own order."""

    path: Path
    names: list[str]
    scores: np.ndarray  # (N, C) float32
    labels: np.ndarray | None  # (N,) int64; None for a CTR-GCN pickle without a companion
    stream: str | None  # canonical stream name, when the file (or its summary) says
    class_names: list[str] | None
    backbone: str | None = None  # the network that scored it, when its summary says (reports since #24)
    test_clips: int = 1  # > 1: mean softmax probabilities over that many clips, not logits (its summary says)

    @property
    def label(self) -> str:
        return stream_label(self.stream, self.backbone)

    @property
    def num_class(self) -> int:
        return self.scores.shape[1]

    @property
    def kind(self) -> str:
        return f"mean probabilities over {self.test_clips} test clips" if self.test_clips > 1 else "logits"


def stream_label(stream: str | None, backbone: str | None) -> str:
    """The stream, after the backbone when that is not CTR-GCN: `joint`, `hdgcn joint`."""
    return (stream or "?") if backbone in (None, "ctrgcn") else f"{backbone} {stream or '?'}"


def locate_score_file(path: str | Path, split: str = "test") -> Path:
    """A score file, or a folder holding one: a work dir (its training report of `split`, eval/ or
    eval-val/) or a report folder itself (eval/, eval-test-<time>/ ...); scores.npz preferred."""
    path = Path(path)
    if path.is_file():
        return path
    report = path / REPORT_DIRS[split]
    if path.is_dir():
        for folder in (report, path):
            for name in SCORE_NAMES:
                if (folder / name).is_file():
                    return folder / name
        how = (
            "train it to the end"
            if split == "test"
            else "train it with --val-split F, or write it with `mmcl test --split val --out DIR` and give DIR"
        )
        raise MMCLError(
            f"{path}: no score file inside (looked for {' or '.join(SCORE_NAMES)} in {report} and {path}); {how}"
        )
    hint, beside = "", path.parent / REPORT_DIRS[split] / path.name
    if path.name in SCORE_NAMES and beside.is_file():
        hint = f" (did you mean {beside}?)"
    raise MMCLError(f"{path}: no such score file{hint}")


def load_score_file(path: str | Path, split: str = "test") -> ScoreSet:
    """Read our `.npz` or a CTR-GCN `.pkl` score file (see the module doc); a work dir gives its
    training report of `split`."""
    path = locate_score_file(path, split)
    if path.suffix == ".npz":
        s = _load_npz(path)
    elif path.suffix in (".pkl", ".pickle"):
        s = _load_pickle(path)
    else:
        raise MMCLError(f"{path}: unknown score file type (expected .npz, or CTR-GCN's .pkl)")
    if s.scores.ndim != 2 or len(s.scores) != len(s.names) or len(s.names) == 0:
        raise MMCLError(
            f"{path}: expected one score vector per sample, got scores of shape "
            f"{s.scores.shape} for {len(s.names)} names"
        )
    if not np.isfinite(s.scores).all():
        raise MMCLError(f"{path}: scores contain NaN or infinite values")
    duplicates = _duplicates(s.names)
    if duplicates:
        raise MMCLError(f"{path}: sample names occur twice ({', '.join(duplicates[:3])})")
    if s.labels is not None and ((s.labels < 0) | (s.labels >= s.num_class)).any():
        raise MMCLError(f"{path}: labels outside 0..{s.num_class - 1}")
    return s


def _load_npz(path: Path) -> ScoreSet:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise MMCLError(f"{path}: not a readable .npz score file ({e})") from None
    missing = [k for k in ("names", "scores") if k not in data]
    if missing:
        raise MMCLError(
            f"{path}: missing arrays {', '.join(missing)} (an mmcl score file has names, labels, scores, class_names)"
        )
    stream = str(data["stream"]) if "stream" in data else _summary_stream(path)
    return ScoreSet(
        path=path,
        names=[str(n) for n in data["names"]],
        scores=data["scores"].astype(np.float32),
        labels=data["labels"].astype(np.int64) if "labels" in data else None,
        stream=_canonical(stream, path),
        class_names=[str(c) for c in data["class_names"]] if "class_names" in data else None,
        backbone=_summary_value(path, "backbone"),
        test_clips=_summary_clips(path),
    )


def _load_pickle(path: Path) -> ScoreSet:
    obj = load_plain(path, "a score pickle (CTR-GCN's {sample name: score vector})")
    items = list(obj.items()) if isinstance(obj, dict) else obj
    try:
        names = [str(name) for name, _ in items]
        scores = np.stack([np.asarray(v, dtype=np.float32).reshape(-1) for _, v in items])
    except (TypeError, ValueError):
        raise MMCLError(
            f"{path}: expected CTR-GCN's score pickle, a dict {{sample name: score vector}} of equal-length vectors"
        ) from None
    companion = _companion_npz(path)
    labels = class_names = None
    if companion is not None:
        by_name = dict(zip(companion.names, range(len(companion.names))))
        if companion.labels is not None and all(n in by_name for n in names):
            labels = companion.labels[[by_name[n] for n in names]]
            class_names = companion.class_names
    return ScoreSet(
        path,
        names,
        scores,
        labels,
        _canonical(_summary_stream(path), path),
        class_names,
        _summary_value(path, "backbone"),
        _summary_clips(path),
    )


def _companion_npz(path: Path) -> ScoreSet | None:
    npz = path.with_suffix(".npz")
    return _load_npz(npz) if npz.is_file() else None


def _summary_stream(path: Path) -> str | None:
    return _summary_value(path, "stream")


def _summary_value(path: Path, key: str) -> str | None:
    """`key` of the summary.json beside a score file, if there is one that says."""
    summary = path.parent / SUMMARY_NAME
    if not summary.is_file():
        return None
    try:
        value = json.loads(summary.read_text()).get(key)
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return None if value is None else str(value)


def _summary_clips(path: Path) -> int:
    clips = _summary_value(path, "test_clips")
    return int(clips) if clips is not None and clips.isdigit() and int(clips) > 0 else 1


def _canonical(stream: Any, path: Path) -> str | None:
    if stream is None:
        return None
    try:
        return canonical_stream(str(stream))
    except MMCLError:
        raise MMCLError(f"{path}: unknown stream {stream!r} in its metadata; known: {', '.join(STREAMS)}") from None


def _duplicates(names: list[str]) -> list[str]:
    unique, counts = np.unique(np.asarray(names, dtype=object).astype(str), return_counts=True)
    return unique[counts > 1].tolist()


# --------------------------------------------------------------------------- alignment


@dataclass
class Aligned:
    """Several score sets on the same samples, rows in the first file's order."""

    sets: list[ScoreSet]
    names: list[str]
    scores: np.ndarray  # (K, N, C)
    labels: np.ndarray  # (N,)
    labels_from: str
    class_names: list[str] | None

    @property
    def streams(self) -> list[str | None]:
        return [s.stream for s in self.sets]


def align(sets: list[ScoreSet], cache_labels: dict[str, int] | None = None, cache_desc: str = "--cache") -> Aligned:
    """Reorder every set to the first one's sample order; refuse mismatched coverage or labels."""
    if not sets:
        raise MMCLError("ensemble: no score files given")
    ref = sets[0]
    rows = [np.arange(len(ref.names))]
    for s in sets[1:]:
        rows.append(_rows_in(ref, s))
        if s.num_class != ref.num_class:
            raise MMCLError(
                f"{s.path}: {s.num_class} classes, but {ref.path} has {ref.num_class}; "
                f"score files must come from models of the same dataset"
            )
        if (s.test_clips > 1) != (ref.test_clips > 1):
            raise MMCLError(
                f"{s.path} holds {s.kind} and {ref.path} {ref.kind}: a sum of the two means "
                f"nothing; score both alike (`mmcl test --checkpoint RUN/last.pt --test-clips N "
                f"--out DIR`, then give DIR)"
            )
    class_names = _class_names(sets)
    scores = np.stack([s.scores[r] for s, r in zip(sets, rows)])
    labels, labels_from = _labels(sets, rows, ref.names, cache_labels, cache_desc)
    return Aligned(sets, list(ref.names), scores, labels, labels_from, class_names)


def _rows_in(ref: ScoreSet, s: ScoreSet) -> np.ndarray:
    """Row of each of `ref`'s names in `s`, or a clear error listing what differs."""
    index = {n: i for i, n in enumerate(s.names)}
    missing = [n for n in ref.names if n not in index]
    extra = sorted(set(s.names) - set(ref.names))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} of its samples (e.g. {', '.join(missing[:3])})")
        if extra:
            parts.append(f"has {len(extra)} samples it lacks (e.g. {', '.join(extra[:3])})")
        raise MMCLError(
            f"{s.path} does not cover the same samples as {ref.path}: it "
            f"{' and '.join(parts)}; score files must come from the same split of the same cache"
        )
    return np.array([index[n] for n in ref.names], dtype=np.int64)


def _class_names(sets: list[ScoreSet]) -> list[str] | None:
    named = [s for s in sets if s.class_names is not None]
    for s in named[1:]:
        if s.class_names != named[0].class_names:
            raise MMCLError(
                f"{s.path} and {named[0].path} name different classes; they come from models of different datasets"
            )
    return named[0].class_names if named else None


def _labels(sets, rows, names, cache_labels, cache_desc) -> tuple[np.ndarray, str]:
    labelled = [(s, s.labels[r]) for s, r in zip(sets, rows) if s.labels is not None]
    for s, lab in labelled[1:]:
        bad = np.flatnonzero(lab != labelled[0][1])
        if len(bad):
            raise MMCLError(
                f"{s.path} and {labelled[0][0].path} disagree on the label of {len(bad)} samples (e.g. {names[bad[0]]})"
            )
    if labelled:
        return labelled[0][1], str(labelled[0][0].path)
    if cache_labels is None:
        raise MMCLError(
            f"none of the score files carries labels ({', '.join(str(s.path) for s in sets)}); "
            f"pass --cache DIR (the cache they were computed on) or keep scores.npz beside the .pkl"
        )
    missing = [n for n in names if n not in cache_labels]
    if missing:
        raise MMCLError(
            f"{cache_desc} lacks {len(missing)} of the scored samples (e.g. {', '.join(missing[:3])}); "
            f"is it the cache the scores were computed on?"
        )
    return np.array([cache_labels[n] for n in names], dtype=np.int64), cache_desc


def cache_labels(cache: str | Path) -> tuple[dict[str, int], str]:
    """{sample name: label} of a cache (root or dataset directory)."""
    from shared.cache_schema import SkeletonCache, resolve_dataset_dir

    skeletons = SkeletonCache(resolve_dataset_dir(cache))
    return dict(zip(skeletons.names, skeletons.labels.tolist())), str(skeletons.path)
