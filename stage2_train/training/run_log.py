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

from ..evaluation.plots import curves_figure, save


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
            old = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
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
