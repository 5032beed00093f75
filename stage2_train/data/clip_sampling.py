"""pyskl's test-time input: several windows ("clips") per sample, their class probabilities averaged.

ST-GCN++ and ProtoGCN are tested on 10 clips of 100 frames (`UniformSample(clip_len=100, num_clips=10)`
in pyskl's test pipelines) and the recognizer averages the clips' softmax probabilities (pyskl's
`average_clips='prob'`, the default its configs keep). `clip_indices` restates pyskl's test-mode
`UniformSampleFrames` index rule; `ClipsInput` is the test-time input pipeline that uses it, used in
place of `transforms.InputPipeline` when a run's `test_clips` is above 1 (at 1 every evaluation keeps
the centre crop resized to the window, the CTR-GCN feeder's test input).

The rule, per clip i of K, for a sample of T frames and a window of W, from one generator seeded with
255 for every sample (so the clips are the same at every evaluation):
- T < W: the window loops over the video from frame i (T < K) or i * T // K;
- W <= T < 2W: every frame 0..W-1 is shifted by how many of T - W extra steps, placed at distinct
  random positions of W + 1, lie at or before it (a sorted draw without repetition);
- T >= 2W: the video cut into W nearly equal segments, one random frame of each.
Every clip first draws a crop ratio and an offset, as pyskl does; at test time the ratio is 1 (the
whole video) and the offset 0, but the draws still advance the generator, so they are made here too.
ProtoGCN's own release samples with `UniformSampleDecode`, which agrees except that a video shorter
than the window starts each clip at a random frame: the rule here is pyskl's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from shared.layouts import Layout
from shared.normalization import translate_to_origin_torch

from .augment_config import AugmentConfig
from .streams import canonical_stream, make_stream, to_model_input
from .transforms import InputPipeline, minmax_scale

TEST_SEED = 255  # pyskl's UniformSampleFrames seed in test mode


@lru_cache(maxsize=4096)
def clip_indices(num_frames: int, window: int, clips: int, seed: int = TEST_SEED) -> np.ndarray:
    """(clips, window) frame indices into a video of `num_frames` frames (see the module's rule).
    Cached: the result depends on its arguments alone; returned read-only."""
    if num_frames < 1:
        raise ValueError(f"a sample of {num_frames} frames has no clips")
    rng = np.random.RandomState(seed)  # the legacy generator: pyskl seeds numpy's global one
    out = np.empty((clips, window), np.int64)
    for i in range(clips):
        rng.rand()  # the crop ratio (1 at test time)
        rng.randint(1)  # the crop's offset (0 at test time)
        if num_frames < window:
            start = i if num_frames < clips else i * num_frames // clips
            frames = np.arange(start, start + window)
        elif num_frames < 2 * window:
            steps = np.zeros(window + 1, np.int64)
            steps[rng.choice(window + 1, num_frames - window, replace=False)] = 1
            frames = np.arange(window) + np.cumsum(steps)[:-1]
        else:
            edges = np.arange(window + 1) * num_frames // window
            frames = edges[:-1] + rng.randint(np.diff(edges))
        out[i] = frames % num_frames
    out.flags.writeable = False
    return out


def average_probabilities(logits: torch.Tensor, clips: int) -> torch.Tensor:
    """(N * clips, C) logits, the clips of a sample consecutive -> (N, C) mean softmax probability."""
    return logits.view(-1, clips, logits.shape[-1]).softmax(-1).mean(1)


class ClipsInput:
    """A collated test batch -> the network's input for `clips` windows per sample, (N * clips, C,
    window, V, M), the clips of a sample consecutive; `scores` turns the network's logits for them
    into one (N, C) row of mean class probabilities per sample.

    Each sample gets the normalisation of the single-window test input (translation to the layout's
    centre joint; ucla-view also its min-max scaling), then its frames at `clip_indices`."""

    def __init__(self, cfg: AugmentConfig, clips: int, stream: str, layout: Layout) -> None:
        self.cfg, self.clips, self.stream, self.layout = cfg, clips, canonical_stream(stream), layout

    def __call__(self, batch: dict[str, torch.Tensor],
                 generator: torch.Generator | None = None) -> torch.Tensor:  # the generator: unused, fixed seed
        x, lengths = batch["joints"].float(), batch["length"].to(batch["joints"].device)
        x = translate_to_origin_torch(x, self.layout.center)
        if self.cfg.kind == "ucla-view":
            x = minmax_scale(x, lengths)
        idx = np.stack([clip_indices(int(n), self.cfg.window, self.clips) for n in lengths.tolist()])
        idx = torch.from_numpy(idx).to(x.device)  # (N, clips, window)
        frames = x[torch.arange(len(x), device=x.device)[:, None, None], idx].flatten(0, 1)
        return to_model_input(make_stream(frames, self.stream, self.layout))

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        return average_probabilities(logits, self.clips)


def evaluation_input(cfg: AugmentConfig, stream: str, layout: Layout) -> InputPipeline | ClipsInput:
    """The evaluation input of a run: one centre-cropped window (`test_clips` 1, the CTR-GCN feeder's
    test input) or pyskl's `test_clips` clips (ClipsInput)."""
    if cfg.test_clips == 1:
        return InputPipeline(cfg, False, stream, layout)
    return ClipsInput(cfg, cfg.test_clips, stream, layout)
