"""A run's log: metrics.jsonl (one JSON object per epoch), steps.jsonl (the loss parts and learning
rate every --log-every steps), TensorBoard scalars under grouped names (`train/`, `val/`, `test/`
per epoch, `step/` per step; accuracies in %) with the resolved config as hyperparameters, and
curves.png (plots.curves_figure), written by the main process; a resumed run keeps the rows its
checkpoint covers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from shared.errors import MMCLError

from ..evaluation.plots import curves_figure, save


def read_rows(path: Path) -> list[dict[str, Any]]:
    """metrics.jsonl's rows. A last line cut short (a kill while it was written: its epoch has no
    checkpoint yet, so the resumed run redoes it) is dropped; a damaged line before it is one error."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict):
            if number == len(lines):
                break
            raise MMCLError(
                f"{path}, line {number}: not a JSON object (damaged); restore or delete the file "
                f"(its rows are a record, training does not need them)"
            )
        rows.append(row)
    return rows


class RunLog:
    """metrics.jsonl (one JSON object per epoch) and TensorBoard scalars, on the main process."""

    def __init__(self, work_dir: Path, acc: Accelerator, start_epoch: int, title: str = "") -> None:
        self.path, self.main = work_dir / "metrics.jsonl", acc.is_main_process
        self.steps_path = work_dir / "steps.jsonl"
        self.curves, self.title = work_dir / "curves.png", title
        self.rows: list[dict[str, Any]] = []
        if not self.main:
            return
        work_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # a resumed run keeps the epochs its checkpoint covers
            old = read_rows(self.path)
            self.rows = [r for r in old if r.get("epoch", 0) <= start_epoch]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        if self.steps_path.exists():  # steps of epochs the checkpoint covers
            old = read_rows(self.steps_path)
            self.steps_path.write_text("".join(json.dumps(r) + "\n" for r in old if r.get("epoch", 0) <= start_epoch))
        self.tb = SummaryWriter(str(work_dir / "tensorboard"), purge_step=start_epoch + 1 if start_epoch else None)

    def write(self, epoch: int, metrics: dict[str, float]) -> None:
        if not self.main:
            return
        row = {"epoch": epoch, **metrics}
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in metrics.items():
            self.tb.add_scalar(tb_tag(key), 100 * value if is_accuracy(key) else value, epoch)
        self.tb.flush()
        save(curves_figure(self.rows, self.title), self.curves)
        shown = ", ".join(f"{k} {shown_value(k, v)}" for k, v in metrics.items() if k in SHOWN)
        tqdm.write(f"epoch {epoch}: {shown}")

    def step(self, step: int, epoch: int, values: dict[str, float]) -> None:
        """One training step's loss parts and learning rate (every --log-every steps)."""
        if not self.main:
            return
        with open(self.steps_path, "a") as f:
            f.write(json.dumps({"step": step, "epoch": epoch, **values}) + "\n")
        for key, value in values.items():
            self.tb.add_scalar(f"step/{key}", value, step)

    def hyperparameters(self, config: dict[str, Any], results: dict[str, float]) -> None:
        """The resolved config beside the final results (TensorBoard's HPARAMS tab)."""
        if not self.main:
            return
        plain = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.items()}
        self.tb.add_hparams(plain, {f"hparam/{k}": v for k, v in results.items()}, run_name=".")
        self.tb.flush()

    def close(self) -> None:
        if self.main:
            self.tb.close()


SHOWN = ("loss", "train_top1", "lr", "samples_per_s", "val_top1", "test_top1")
SPLIT_PREFIXES = ("train_", "val_", "test_")


def is_accuracy(key: str) -> bool:
    return key.endswith(("top1", "top5", "mean_class_accuracy"))


def tb_tag(key: str) -> str:
    """metrics.jsonl's key -> TensorBoard's grouped tag: `val_top1` -> `val/top1 %`, `loss` -> `train/loss`."""
    split, name = next(((p[:-1], key[len(p) :]) for p in SPLIT_PREFIXES if key.startswith(p)), ("train", key))
    return f"{split}/{name}" + (" %" if is_accuracy(key) else "")


def shown_value(key: str, value: float) -> str:
    """As a person reads it: accuracies in %, the rest to 4 significant digits."""
    return f"{100 * value:.2f} %" if is_accuracy(key) else f"{value:.4g}"
