"""The model stage of stage 1: loading the models (`model_specs.ModelSpecs` says which), and one
decoded batch through them (RGB embeddings, MLLM answers, description embeddings) into a feature
block, timed per stage."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, TypeVar

import numpy as np

from shared.cache_schema import BlockShape, FeatureBlock, FeatureHeader

from .decode import Decoded
from .model_specs import ModelSpecs

if TYPE_CHECKING:  # the model modules import transformers: loaded only when a run needs them
    from .mllm_backend import MLLMAnswer, MLLMBackend
    from .prompts import Prompts
    from .rgb_encoders import RGBEncoder
    from .text_encoder import TextEncoder


T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Models:
    rgb: RGBEncoder
    text: TextEncoder
    mllm: MLLMBackend
    prompts: Prompts


def load_prompts_for(models: ModelSpecs) -> Prompts:
    from .prompts import load_prompts

    return load_prompts(models.prompts)


def load_models(specs: ModelSpecs, batch_size: int, image_size: tuple[int, int] | None = None) -> Models:
    """The three models; the MLLM answers a whole batch in one pass (of temporal images of
    `image_size`, where known: vLLM bounds its images to it)."""
    from .mllm_factory import build_mllm
    from .rgb_encoders import build_rgb_encoder
    from .text_encoder import TextEncoder

    device = specs.resolved_device()
    return Models(
        rgb=build_rgb_encoder(specs.rgb_encoder, device, batch_size=max(batch_size, 8)),
        text=TextEncoder(specs.text_encoder, device),
        mllm=build_mllm(
            specs.mllm, backend=specs.backend, device=device, **mllm_options(specs, batch_size, image_size)
        ),
        prompts=load_prompts_for(specs),
    )


def mllm_options(specs: ModelSpecs, batch_size: int, image_size: tuple[int, int] | None = None) -> dict:
    """build_mllm's options for the chosen backend (the vLLM engine settings only where vLLM runs)."""
    if specs.resolved_backend() == "vllm":
        return {"batch_size": batch_size, "engine": specs.vllm, "image_size": image_size}
    return {"batch_size": batch_size}


def required_modules(specs: ModelSpecs, backend: str) -> list[str]:
    """The top-level modules a run with `specs` on `backend` imports (what the install must provide)."""
    from .mllm_factory import mllm_required_modules
    from .rgb_encoders import rgb_required_modules
    from .text_encoder import text_required_modules

    modules = [
        *mllm_required_modules(backend),
        *rgb_required_modules(specs.rgb_encoder),
        *text_required_modules(specs.text_encoder),
    ]
    return sorted(set(modules))


def check_model_sources(specs: ModelSpecs) -> None:
    """Raise MMCLError for a model path that does not exist, loading nothing: called before the
    skeleton cache is built (minutes for NTU120), not after. Hub ids are checked when loaded."""
    from .mllm_backend import MLLM_LABEL
    from .model_source import resolve_model_source
    from .rgb_encoders import rgb_encoder_source
    from .text_encoder import resolve_text_model

    resolve_model_source(specs.mllm, MLLM_LABEL)
    rgb_encoder_source(specs.rgb_encoder)
    resolve_text_model(specs.text_encoder)


def batch_or_each(fn: Callable[[list[T]], Sequence[R]], items: list[T]) -> list[R | Exception]:
    """`fn` over the whole batch; if that raises, over each item alone, so one bad sample fails alone."""
    if not items:
        return []
    try:
        return list(fn(items))
    except Exception as e:  # noqa: BLE001 - a model error becomes a recorded failure
        if len(items) == 1:
            return [e]
    out: list[R | Exception] = []
    for item in items:
        try:
            out.append(fn([item])[0])
        except Exception as e:  # noqa: BLE001
            out.append(e)
    return out


def _reason(e: Exception) -> str:
    return f"{type(e).__name__}: {e}".splitlines()[0]


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over samples (decode and compose: CPU time in the workers)."""

    decode: float = 0.0
    compose: float = 0.0
    wait: float = 0.0  # the models waiting for decoded batches (after the first)
    rgb: float = 0.0
    mllm: float = 0.0
    text: float = 0.0
    write: float = 0.0

    def add(self, stage: str, seconds: float) -> None:
        with _TIMES_LOCK:  # the pipeline's stages may run on threads of their own
            setattr(self, stage, getattr(self, stage) + seconds)


_TIMES_LOCK = threading.Lock()


class Timer:
    def __init__(self, times: StageTimes, stage: str):
        self.times, self.stage = times, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.times.add(self.stage, time.perf_counter() - self.t0)


def run_models(batch: list[Decoded], models: Models, header: FeatureHeader, times: StageTimes) -> FeatureBlock:
    """RGB embeddings, MLLM answers and description embeddings of one decoded batch."""
    rgb = rgb_stage(batch, models, header, times)
    return text_stage(batch, rgb, mllm_stage(batch, models, times), models, header, times)


# The three model stages of one batch, which `pipeline` may run on different threads: the RGB encoder
# and the MLLM each on the decoded batch, then the text encoder, which also assembles the block.
def rgb_stage(
    batch: list[Decoded], models: Models, header: FeatureHeader, times: StageTimes
) -> list[tuple[np.ndarray, np.ndarray] | Exception]:
    """Per decoded sample (those with an image, in order): (pooled, frames) embeddings, or the error."""
    frames = stored_frames(header.attrs)
    with Timer(times, "rgb"):
        return batch_or_each(lambda b: encode_rgb(models.rgb, b, frames), [d for d in batch if d.image is not None])


def mllm_stage(batch: list[Decoded], models: Models, times: StageTimes) -> list[MLLMAnswer | Exception]:
    """Per decoded sample (those with an image, in order): the MLLM's answers, or the error."""
    with Timer(times, "mllm"):
        return batch_or_each(
            lambda b: models.mllm.answer([d.image for d in b], models.prompts),
            [d for d in batch if d.image is not None],
        )


def text_stage(
    batch: list[Decoded], rgb: list, answers: list, models: Models, header: FeatureHeader, times: StageTimes
) -> FeatureBlock:
    """The batch's feature block: the RGB embeddings and answers filled in, the descriptions encoded.
    Failures are listed as video, RGB, MLLM, then text encoder ones."""
    block = empty_block(batch, header)
    block.failures = [(d.name, "video", d.error) for d in batch if d.error is not None]
    ok = [i for i, d in enumerate(batch) if d.image is not None]
    for i, result in zip(ok, rgb):
        if isinstance(result, Exception):
            block.failures.append((batch[i].name, "rgb", _reason(result)))
        else:
            block.rgb_valid[i] = True
            block.rgb_pooled[i], block.rgb_frames[i] = result
    answered = []
    for i, answer in zip(ok, answers):
        error = _reason(answer) if isinstance(answer, Exception) else answer.error
        if error is not None:
            block.failures.append((batch[i].name, "mllm", error))
        else:
            block.yes_prob[i], block.description[i] = answer.yes_prob, answer.description
            answered.append(i)
    with Timer(times, "text"):
        embeddings = batch_or_each(models.text.encode, [block.description[i] for i in answered])
    for i, emb in zip(answered, embeddings):
        if isinstance(emb, Exception):
            block.failures.append((batch[i].name, "mllm", f"text encoder: {_reason(emb)}"))
        else:
            block.text_valid[i], block.text_embedding[i] = True, emb
    return block


def encode_rgb(encoder, batch: list[Decoded], frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sample: the pooled embedding of the stitched image (D,) and of each of its first `frames`
    crops (frames, D): K with --frame-features, else 0 (nothing reads them; the crops cost 5x the
    stitched image in the encoder)."""
    pooled = encoder.encode([d.image for d in batch])  # (n, D)
    if not frames:
        return [(p, np.zeros((0, pooled.shape[-1]), pooled.dtype)) for p in pooled]
    crops = encoder.encode([c for d in batch for c in d.crops[:frames]])  # (n * frames, D)
    return list(zip(pooled, crops.reshape(len(batch), frames, pooled.shape[-1])))


def stored_frames(attrs: dict) -> int:
    """K of rgb/frames: the temporal image's K with --frame-features, else 0 (an N x 0 x D dataset).
    Files made before the flag existed stored every frame."""
    return int(attrs["frames"]) if bool(attrs.get("frame_features", True)) else 0


def empty_block(batch: list[Decoded], header: FeatureHeader) -> FeatureBlock:
    """All rows invalid: zero features, undetermined answers (float32, as the models give them)."""
    sizes = BlockShape(
        frames=stored_frames(header.attrs),
        rgb_dim=int(header.attrs["rgb_dim"]),
        questions=len(header.questions),
        text_dim=int(header.attrs["text_dim"]),
    )
    return FeatureBlock.empty(
        np.array([d.row for d in batch], np.int64), [d.name for d in batch], sizes, float_dtype=np.float32
    )
