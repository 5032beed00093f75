"""Fitting a recipe to the data it trains on, saying so, and noticing when training collapsed.

A recipe is written for a dataset's size: MMCL's 110 epochs of batch 200 are ~200 steps an epoch on
NTU, one step an epoch on a 24-sample custom dataset, where the model collapses to one class. Before
a run starts, `fit_recipe` adapts what the recipe (or a default, or --init-from) chose, never what a
config file or flag gave:

- a batch larger than a quarter of the training samples (fewer than MIN_STEPS_PER_EPOCH steps an
  epoch) shrinks to that quarter;
- fewer than MIN_TOTAL_STEPS steps in all: more epochs, with the warm-up and the learning-rate steps
  scaled by the same factor, so the schedule keeps its shape.

Values the user gave are kept; a batch larger than the whole training set is refused (naming the
flag), too few steps in all only warned about. `collapse_warnings` checks the final evaluation: a
run at chance level, or predicting one class for >= COLLAPSED_SHARE of the samples, ends with a
warning in the log and in summary.json.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.errors import MMCLError

from .config import Resolved

MIN_STEPS_PER_EPOCH = 4
MIN_TOTAL_STEPS = 50
COLLAPSED_SHARE = 0.9  # one class predicted for this share of the samples or more
CHANCE_MARGIN = 1.25  # top-1 at most this times chance counts as chance level

# What fit_recipe never changes: the user's values, and a resumed run's (its batches must replay).
USER_SOURCES = ("flag", "config file", "saved config")
FITTED = "fitted to the data"


def _given(resolved: Resolved, key: str) -> bool:
    return resolved.sources[key].startswith(USER_SOURCES)


def _flag(key: str) -> str:
    return f"--{key.replace('_', '-')}"


@dataclass(frozen=True)
class TrainingSize:
    """How many optimisation steps a config makes on a training set of `samples` (after `repeat`)."""

    samples: int
    batch_size: int
    epochs: int

    @property
    def steps_per_epoch(self) -> int:  # the loader drops the last partial batch unless the set is smaller
        return max(1, self.samples // self.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def fit_recipe(resolved: Resolved, train_samples: int) -> tuple[Resolved, list[str]]:
    """`resolved` fitted to `train_samples` training samples (before `repeat`); lines telling the user."""
    cfg, notes = resolved.config, []
    samples = train_samples * cfg.data.repeat
    batch, epochs = cfg.optim.batch_size, cfg.optim.epochs
    if batch > samples:
        if _given(resolved, "batch_size"):
            raise MMCLError(
                f"--batch-size {batch} ({resolved.sources['batch_size']}) is larger than the "
                f"{samples} training samples: not one full batch an epoch; choose "
                f"--batch-size {max(1, samples // MIN_STEPS_PER_EPOCH)} or less"
            )
    if samples // batch < MIN_STEPS_PER_EPOCH and not _given(resolved, "batch_size"):
        fitted = max(1, samples // MIN_STEPS_PER_EPOCH)
        if fitted < batch:
            notes.append(
                f"recipe fitted: batch {batch} -> {fitted} ({resolved.sources['batch_size']} gave "
                f"{batch}; {samples} training samples make {max(1, samples // batch)} step(s) an "
                f"epoch; --batch-size keeps a batch of your choice)"
            )
            resolved = resolved.with_changes({"batch_size": fitted}, FITTED)
            batch = fitted
    size = TrainingSize(samples, batch, epochs)
    if 0 < size.total_steps < MIN_TOTAL_STEPS:
        needed = math.ceil(MIN_TOTAL_STEPS / size.steps_per_epoch)
        if _given(resolved, "epochs"):
            notes.append(
                f"warning: {size.total_steps} optimisation steps in all ({epochs} epochs of "
                f"{size.steps_per_epoch}); a model this short-trained may stay at chance "
                f"(--epochs {needed} gives {MIN_TOTAL_STEPS})"
            )
        else:
            resolved, line = _more_epochs(resolved, needed, size)
            notes.append(line)
    return resolved, notes


def _more_epochs(resolved: Resolved, epochs: int, size: TrainingSize) -> tuple[Resolved, str]:
    """`epochs` epochs, with the warm-up and the decay steps (where not given) stretched alike."""
    o = resolved.config.optim
    factor = epochs / o.epochs
    changes: dict[str, object] = {"epochs": epochs}
    if not _given(resolved, "warmup"):
        changes["warmup"] = round(o.warmup * factor)
    if not _given(resolved, "steps"):
        changes["steps"] = [round(s * factor) for s in o.steps]
    shown = ", ".join(f"{k} {_show(getattr(o, k))} -> {_show(v)}" for k, v in changes.items())
    line = (
        f"recipe fitted: {shown} ({size.total_steps} optimisation steps in all on {size.samples} training "
        f"samples, fewer than {MIN_TOTAL_STEPS}; {', '.join(_flag(k) for k in changes)} keep values of "
        f"your choice)"
    )
    return resolved.with_changes(changes, FITTED), line


def _show(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)


# --------------------------------------------------------------------------- the settings line

# The settings a person reads first, in this order; the rest are in config.yaml.
SHOWN = (
    "recipe",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup",
    "steps",
    "schedule",
    "window",
    "base_channel",
    "use_fam",
    "use_frm",
    "seed",
    "mixed_precision",
)


def settings_lines(resolved: Resolved) -> list[str]:
    """The run's main settings, each with where it came from, grouped by source."""
    cfg = resolved.config
    by_source: dict[str, list[str]] = {}
    for key in SHOWN:
        by_source.setdefault(resolved.sources[key], []).append(f"{key} {_show(cfg.get(key))}")
    parts = [f"{', '.join(items)} ({source})" for source, items in by_source.items()]
    return ["settings: " + "; ".join(parts) + "; the rest: config.yaml in the work dir"]


# --------------------------------------------------------------------------- collapse


def collapse_warnings(scores: np.ndarray, labels: np.ndarray, class_names: list[str], split: str) -> list[str]:
    """Warnings when a model's predictions on `split` are at chance level or nearly all one class."""
    if len(labels) == 0:
        return []
    predicted = scores.argmax(axis=1)
    top1 = float((predicted == labels).mean())
    chance = 1 / len(class_names)
    counts = np.bincount(predicted, minlength=len(class_names))
    share = counts.max() / len(predicted)
    problems = []
    if share >= COLLAPSED_SHARE and len(class_names) > 1:
        problems.append(
            f"predicts {class_names[int(counts.argmax())]!r} for {100 * share:.0f} % of the {split} samples"
        )
    if top1 <= CHANCE_MARGIN * chance:
        problems.append(
            f"top-1 {100 * top1:.2f} % is at chance level ({100 * chance:.2f} % for {len(class_names)} classes)"
        )
    if not problems:
        return []
    return [
        f"warning: the model {' and '.join(problems)}: training collapsed or learnt nothing; train longer "
        f"(--epochs), with smaller batches (--batch-size) or another --lr, or check the labels"
    ]
