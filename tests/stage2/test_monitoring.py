"""Monitoring people read (issue #25 item 5): TensorBoard holds per-step loss parts and lr, per-epoch
metrics under train/, val/ and test/ (accuracies in %), and the resolved config as hyperparameters;
steps.jsonl has the same steps; the epoch line prints percentages."""

from __future__ import annotations

import json
import re

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stage2_run import COMMON, SKELETON_ONLY, invoke
from stage2_cache import write_tiny_cache


def test_tensorboard_steps_groups_and_hyperparameters(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache", frames=(12, 20), features=False)
    work = tmp_path / "run"
    result = invoke(
        "train",
        "--cache",
        cache,
        "--work-dir",
        work,
        *COMMON,
        "--epochs",
        "2",
        "--warmup",
        "0",
        "--window",
        "12",
        "--workers",
        "0",
        "--batch-size",
        "3",
        "--log-every",
        "2",
        "--test-every",
        "1",
        "--val-split",
        "0.34",
        *SKELETON_ONLY,
    )
    events = EventAccumulator(str(work / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/loss_ce",
        "train/lr",
        "train/top1 %",
        "val/top1 %",
        "test/top1 %",
        "test/top5 %",
        "step/loss",
        "step/loss_ce",
        "step/lr",
    } <= tags
    top1 = [e.value for e in events.Scalars("test/top1 %")]
    rows = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    assert len(top1) == len(rows) == 2
    assert all(abs(a - 100 * r["test_top1"]) < 1e-3 for a, r in zip(top1, rows))
    steps = [json.loads(line) for line in (work / "steps.jsonl").read_text().splitlines()]
    # 9 training samples (9 held out) in batches of 3: 3 steps an epoch, logged at its steps 0 and 2 (the last)
    assert [s["step"] for s in steps] == [1, 3, 4, 6] and {"loss", "loss_ce", "loss_align", "lr"} <= set(steps[0])
    assert [e.step for e in events.Scalars("step/loss")] == [1, 3, 4, 6]
    assert "_hparams_/session_start_info" in events.summary_metadata
    assert [e.value for e in events.Scalars("hparam/test_top1")] == [top1[-1]]
    epoch_lines = [line for line in result.output.splitlines() if re.match(r"epoch \d+: ", line)]
    assert len(epoch_lines) == 2 and all(re.search(r"train_top1 \d+\.\d\d %", line) for line in epoch_lines)
    assert "mean_loss=" in result.output  # the bar: the epoch's running mean
