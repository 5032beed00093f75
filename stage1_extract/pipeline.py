"""Stage 1's main loop as a pipeline: the decoded batches through the models, each finished chunk
committed, with the stages running side by side.

    decode (worker processes, a few batches ahead) ─┐
    RGB encoder (lane "rgb") ───────────────────────┤ per batch, beside the MLLM
    MLLM (this thread) ─────────────────────────────┤
    text encoder + block (lane "text") ─────────────┘ the batch before's, while the MLLM runs on
    HDF5 writer (lane "write")                        a chunk's part file, while the next chunk runs

With `overlap` (the default where the models run on a GPU) the RGB and text encoders run on threads
of their own, each on a CUDA stream of its own, so the MLLM never waits for them; torch releases
the GIL while it computes. Without it (the CPU default: two cores gain nothing from the threads,
which then only contend) they run on this thread as before. The writer always has its thread.

Every lane is one thread, so each runs its work in submission order; at most `depth` batches are in
flight after the MLLM and at most one chunk is being written, so memory stays bounded. Blocks are
collected in order, so the output, the chunk commits (atomic part files) and resuming are those of
the serial loop. An error in any lane stops the run; a chunk already handed to the writer is
still committed. Killed, the process takes its threads with it: nothing outlives it.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterable

from shared.cache_schema import FeatureBlock, FeatureHeader

from .decode import Decoded
from .featurize import Models, StageTimes, Timer, mllm_stage, rgb_stage, text_stage


class Lane:
    """Work of one kind, in submission order: on a thread of its own (`threaded`), else at once on
    the caller's thread. Either way `submit` returns a Future."""

    def __init__(self, name: str, threaded: bool, device: str = "cpu"):
        self.pool = None
        if threaded:
            self.pool = ThreadPoolExecutor(
                1, thread_name_prefix=f"mmcl-{name}", initializer=_own_cuda_stream, initargs=(device,)
            )

    def submit(self, fn: Callable, *args) -> Future:
        if self.pool is not None:
            return self.pool.submit(fn, *args)
        done: Future = Future()
        try:
            done.set_result(fn(*args))
        except Exception as e:  # noqa: BLE001 - raised again by result(), as a thread's would be
            done.set_exception(e)
        return done

    def close(self, cancel: bool) -> None:
        """Wait for the work under way (dropping the queued work too where `cancel`)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=cancel)


def _own_cuda_stream(device: str) -> None:
    """A lane's thread queues its GPU work on a stream of its own, beside the MLLM's (the current
    stream is per thread); its results reach the CPU through a synchronising copy."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(torch.device(device))
        torch.cuda.set_stream(torch.cuda.Stream())


class Pipeline:
    """Runs `batches` through `models` into `chunks` of blocks; `commit(blocks)` writes one finished
    chunk, `collected(batch, block)` sees each batch's block in order (failure streaks, counts)."""

    def __init__(
        self,
        models: Models,
        header: FeatureHeader,
        times: StageTimes,
        *,
        overlap: bool,
        device: str,
        commit: Callable[[list[FeatureBlock]], object],
        collected: Callable[[list[Decoded], FeatureBlock], None],
        depth: int = 2,
    ):
        self.models, self.header, self.times = models, header, times
        self.commit, self.collected = commit, collected
        self.depth = depth if overlap else 0
        self.rgb = Lane("rgb", overlap, device)
        self.text = Lane("text", overlap, device)
        self.writer = Lane("write", True)

    def run(self, chunks: list[int], batches: Iterable[list[Decoded]]) -> None:
        """`chunks`: the number of samples of each chunk, in order; `batches` fill them exactly."""
        ok = False
        try:
            self._run(chunks, batches)
            ok = True
        finally:
            for lane in (self.rgb, self.text):
                lane.close(cancel=True)
            self.writer.close(cancel=not ok)

    def _run(self, chunks: list[int], batches: Iterable[list[Decoded]]) -> None:
        sizes = deque(chunks)
        blocks: list[FeatureBlock] = []
        in_flight: deque[tuple[list[Decoded], Future]] = deque()
        writing: Future | None = None

        def collect() -> None:
            nonlocal blocks, writing
            batch, future = in_flight.popleft()
            block = future.result()
            self.collected(batch, block)
            blocks.append(block)
            if writing is not None and writing.done():
                writing.result()  # a failed write stops the run now, not a chunk later
            if sum(map(len, blocks)) == sizes[0]:
                if writing is not None:
                    writing.result()  # one chunk written at a time
                writing = self.writer.submit(self._write, blocks)
                blocks = []
                sizes.popleft()

        for batch in batches:
            rgb = self.rgb.submit(rgb_stage, batch, self.models, self.header, self.times)
            answers = mllm_stage(batch, self.models, self.times)
            in_flight.append((batch, self.text.submit(self._text, batch, rgb, answers)))
            while len(in_flight) > self.depth:
                collect()
        while in_flight:
            collect()
        if writing is not None:
            writing.result()
        assert not sizes and not blocks, "the batches did not fill the chunks"

    def _text(self, batch: list[Decoded], rgb: Future, answers: list) -> FeatureBlock:
        return text_stage(batch, rgb.result(), answers, self.models, self.header, self.times)

    def _write(self, blocks: list[FeatureBlock]) -> None:
        with Timer(self.times, "write"):
            self.commit(blocks)
