"""A run's log: metrics.jsonl (one JSON object per epoch), TensorBoard scalars and curves.png
(plots.curves_figure), written by the main process; a resumed run keeps the rows its checkpoint
covers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from shared.errors import MMCLError

from .plots import curves_figure, save


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
            raise MMCLError(f"{path}, line {number}: not a JSON object (damaged); restore or delete the file "
                            f"(its rows are a record, training does not need them)")
        rows.append(row)
    return rows


class RunLog:
    """metrics.jsonl (one JSON object per epoch) and TensorBoard scalars, on the main process."""

    def __init__(self, work_dir: Path, acc: Accelerator, start_epoch: int, title: str = "") -> None:
        self.path, self.main = work_dir / "metrics.jsonl", acc.is_main_process
        self.curves, self.title = work_dir / "curves.png", title
        self.rows: list[dict[str, Any]] = []
        if not self.main:
            return
        work_dir.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # a resumed run keeps the epochs its checkpoint covers
            old = read_rows(self.path)
            self.rows = [r for r in old if r.get("epoch", 0) <= start_epoch]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        self.tb = SummaryWriter(str(work_dir / "tensorboard"),
                                purge_step=start_epoch + 1 if start_epoch else None)

    def write(self, epoch: int, metrics: dict[str, float]) -> None:
        if not self.main:
            return
        row = {"epoch": epoch, **metrics}
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in metrics.items():
            self.tb.add_scalar(key, value, epoch)
        self.tb.flush()
        save(curves_figure(self.rows, self.title), self.curves)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k in SHOWN)
        tqdm.write(f"epoch {epoch}: {shown}")

    def close(self) -> None:
        if self.main:
            self.tb.close()


SHOWN = ("loss", "train_top1", "lr", "samples_per_s", "val_top1", "test_top1")
