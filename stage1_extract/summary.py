"""What a stage-1 run reports: samples covered, done before and now, failures, time per stage."""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.cache_schema import SKELETON_FILE, FeatureBlock, SkeletonCache

from .featurize import StageTimes


STAGE_LABELS = {
    "decode": "decode",
    "compose": "crop+stitch",
    "wait": "waiting for decode",
    "rgb": "RGB encoder",
    "mllm": "MLLM",
    "text": "text encoder",
    "write": "write",
}


@dataclass
class Summary:
    output: Path
    total: int  # rows this run covers
    skipped: int  # done by an earlier run
    processed: int = 0  # done now
    seconds: float = 0.0
    times: StageTimes = field(default_factory=StageTimes)
    block: FeatureBlock | None = None  # the output's rows
    load_s: float = 0.0  # loading the models
    first_batch_s: float = 0.0  # then waiting for the first decoded batch (worker start-up)
    merged_shards: int = 0  # --merge: how many shard files were joined
    failed_now: int = 0  # samples that failed in this run
    undetermined: int = 0  # yes/no answers with neither token among the candidates
    answers: int = 0
    skeleton_failures: list[tuple[str, str, str]] = field(default_factory=list)  # of skeletons.h5

    @property
    def failures(self) -> list[tuple[str, str, str]]:
        return self.block.failures if self.block is not None else []

    @property
    def exit_code(self) -> int:
        return 1 if self.failures or self.skeleton_failures else 0

    def report(self) -> str:
        rate = f", {self.processed / self.seconds:.2f} samples/s" if self.processed and self.seconds else ""
        if self.merged_shards:
            lines = [f"{self.output}: {self.total} samples, merged from {self.merged_shards} shards"]
        else:
            lines = [f"{self.output}: {self.total} samples ({self.skipped} done before, {self.processed} now{rate})"]
        if self.block is not None:
            rows = np.array([bool(n) for n in self.block.name])  # "" = outside --limit
            lines.append(
                f"  RGB features: {int(self.block.rgb_valid[rows].sum())}, text features: "
                f"{int(self.block.text_valid[rows].sum())} of {int(rows.sum())} extracted samples"
            )
        if self.failures:
            stages = Counter(stage for _, stage, _ in self.failures)
            names = {name for name, _, _ in self.failures}
            name, _, reason = self.failures[0]
            lines.append(
                f"  {len(names)} samples failed ({', '.join(f'{s}: {c}' for s, c in stages.items())}), "
                f"listed in the file's failures/ table; first: {name}: {reason}"
            )
        if self.skeleton_failures:
            name, _, reason = self.skeleton_failures[0]
            lines.append(
                f"  {len(self.skeleton_failures)} samples left out of the skeleton cache (its failures/ "
                f"table); first: {name}: {reason}"
            )
        if self.answers:
            lines.append(f"  yes/no answers undetermined (NaN): {self.undetermined} of {self.answers}")
        if self.processed:
            per = {k: 1000 * v / self.processed for k, v in dataclasses.asdict(self.times).items()}
            lines.append("  ms per sample: " + ", ".join(f"{STAGE_LABELS[k]} {v:.1f}" for k, v in per.items()))
            lines.append(
                f"  start-up: models {self.load_s:.1f} s, then the first decoded batch {self.first_batch_s:.1f} s"
            )
        return "\n".join(lines)


def skeleton_failures(dataset_dir: Path) -> list[tuple[str, str, str]]:
    """The samples the skeleton cache of `dataset_dir` left out (unreadable raw files): they fail the run too."""
    path = Path(dataset_dir) / SKELETON_FILE
    return SkeletonCache(path).failures if path.exists() else []
