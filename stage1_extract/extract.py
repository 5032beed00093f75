"""Stage 1 orchestration: skeleton cache, then per sample a temporal image, its RGB embeddings (FAM's
target) and the MLLM's instructive text features (FRM's input), written as one named feature set.

    cache/<dataset>/skeletons.h5
    cache/<dataset>/features/<name>.h5                 the feature set (complete)
    cache/<dataset>/features/<name>.shard-I-of-N.h5    one shard's rows, until `--merge`
    cache/<dataset>/features/<name>[.shard-I-of-N].parts/part-<row>.h5   finished chunks of a run

Never lose work: samples go through in chunks; each finished chunk is written atomically as a part
file, so a killed run restarts where it stopped. When every chunk is done the parts are merged into
the output and removed. Video decoding and cropping run in DataLoader worker processes, a few
batches ahead of the models. A sample that fails (missing video, model error) is recorded in the
failures table and the run goes on; the exit status says whether any failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
import shutil
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence, TypeVar

import h5py
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from shared.cache_io import output_lock
from shared.cache_schema import (
    FEATURES_DIR, SKELETON_FILE, FeatureBlock, FeatureHeader, SkeletonCache, merge_feature_parts,
    read_feature_file, write_feature_file)
from shared.errors import CacheError, MMCLError
from shared.registry import DatasetSpec, find_dir, get_dataset

from .temporal_image import TemporalImageConfig, from_frames
from .video import open_frames, video_path

if TYPE_CHECKING:  # the model modules import transformers: loaded only when a run needs them
    from .mllm_backend import MLLMBackend
    from .prompts import Prompts
    from .rgb_encoders import RGBEncoder
    from .text_encoder import TextEncoder

DEFAULT_MLLM = "Qwen/Qwen2.5-VL-7B-Instruct"
DEFAULT_RGB_ENCODER = "efficientnet-lite0"
DEFAULT_TEXT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
LIBRARIES = ("mmcl-action", "torch", "transformers", "vllm", "sentence-transformers", "decord",
             "pillow", "numpy", "h5py")
T = TypeVar("T")
R = TypeVar("R")


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ModelSpecs:
    mllm: str = DEFAULT_MLLM  # hub id or local directory
    backend: str = "auto"  # vllm | transformers | auto
    rgb_encoder: str = DEFAULT_RGB_ENCODER
    text_encoder: str = DEFAULT_TEXT_ENCODER
    prompts: Path | None = None  # None: the built-in prompts
    device: str = "auto"

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Shard:
    """Shard I of N (0-based, as array job ids): every N-th sample of the skeleton file from row I."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> "Shard":
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if m is None or not 0 <= int(m[1]) < int(m[2]):
            raise MMCLError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. --shard 0/8 ... --shard 7/8")
        return cls(int(m[1]), int(m[2]))

    def rows(self, num_samples: int) -> np.ndarray:
        return np.arange(self.index, num_samples, self.count)

    @property
    def suffix(self) -> str:
        return f".shard-{self.index}-of-{self.count}"


@dataclass(frozen=True)
class ExtractConfig:
    dataset: str
    root: Path
    out: Path = Path("cache")
    models: ModelSpecs = ModelSpecs()
    image: TemporalImageConfig = TemporalImageConfig()
    batch_size: int = 16
    chunk_size: int = 256  # samples per committed part file (rounded up to whole batches)
    limit: int | None = None
    shard: Shard | None = None
    feature_set: str | None = None
    save_images: bool = False
    workers: int = 2
    abort_after: int = 64  # stop when the models fail on this many samples in a row
    progress: bool = True


# --------------------------------------------------------------------------- names and paths


def _basename(spec: str) -> str:
    path = Path(str(spec).rstrip("/"))
    return (path.stem if path.suffix in (".pth", ".pt") else path.name) or str(spec)


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "features"


def default_feature_set_name(models: ModelSpecs, image: TemporalImageConfig) -> str:
    """`<mllm>__<rgb>__<text>__k<K>`, plus a short hash when prompts or crops differ from the
    defaults, so that several feature sets of one dataset live side by side."""
    name = "__".join([_basename(models.mllm), _basename(models.rgb_encoder), _basename(models.text_encoder),
                      f"k{image.frames}"])
    custom = {}
    if models.prompts is not None:
        custom["prompts"] = Path(models.prompts).read_bytes().hex()
    defaults = TemporalImageConfig(frames=image.frames)
    if (image.image_size, image.margin, image.min_box) != (defaults.image_size, defaults.margin, defaults.min_box):
        custom["image"] = [image.image_size, image.margin, image.min_box]
    if custom:
        name += "__" + hashlib.sha1(json.dumps(custom, sort_keys=True).encode()).hexdigest()[:6]
    return sanitize(name)


@dataclass(frozen=True)
class FeaturePaths:
    output: Path  # features/<name>.h5, or the shard's file
    parts: Path  # folder of this run's committed chunks
    images: Path  # --save-images: stitched JPEGs
    complete: Path  # features/<name>.h5 (a shard's rows are done once the shards are merged)

    @classmethod
    def of(cls, dataset_dir: Path, name: str, shard: Shard | None) -> "FeaturePaths":
        stem = name + (shard.suffix if shard else "")
        folder = dataset_dir / FEATURES_DIR
        return cls(folder / f"{stem}.h5", folder / f"{stem}.parts", folder / f"{name}.images",
                   folder / f"{name}.h5")


# --------------------------------------------------------------------------- decoding (worker processes)


@dataclass
class Decoded:
    """One sample after the decode stage: its temporal image and crops, or why there is none."""

    row: int
    name: str
    image: Image.Image | None = None
    crops: list[Image.Image] | None = None
    error: str | None = None
    decode_s: float = 0.0
    compose_s: float = 0.0


class TemporalImages(Dataset):
    """Item i: the temporal image of skeleton row `rows[i]`, decoded and cropped in the worker."""

    def __init__(self, rows: np.ndarray, skeletons: SkeletonCache, spec: DatasetSpec, video_dir: Path,
                 config: TemporalImageConfig, images_dir: Path | None):
        self.rows, self.skeletons, self.spec = rows, skeletons, spec
        self.video_dir, self.config, self.images_dir = video_dir, config, images_dir

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Decoded:
        row = int(self.rows[i])
        item = Decoded(row, self.skeletons.names[row])
        try:
            t0 = time.perf_counter()
            frames, indices = open_frames(video_path(self.spec, self.video_dir, item.name)).sample(self.config.frames)
            t1 = time.perf_counter()
            result = from_frames(frames, indices, self.skeletons.sample(row), self.skeletons.color_resolution,
                                 self.config)
            item.image, item.crops = result.image, result.crops
            item.decode_s, item.compose_s = t1 - t0, time.perf_counter() - t1
        except MMCLError as e:  # VideoError, or no folder for the sample
            item.error = str(e)
        except Exception as e:  # noqa: BLE001 - one odd video must not stop the run
            item.error = f"{type(e).__name__}: {e}"
        if item.image is not None and self.images_dir is not None:
            item.image.save(self.images_dir / f"{item.name}.jpg", quality=90)
        return item


def _as_list(batch: list[Decoded]) -> list[Decoded]:
    return batch


def _quiet_worker(_: int) -> None:
    torch.set_num_threads(1)  # workers decode and crop; they must not compete with the models' threads


def prefetch(dataset: TemporalImages, batches: list[list[int]], workers: int) -> Iterator[list[Decoded]]:
    """Decoded batches in order, produced by `workers` processes a few batches ahead (bounded).

    Workers are spawned, not forked: a forked worker would share the output's lock (flock belongs
    to the open file, which fork shares) and keep it after the main process is killed, and would
    inherit any GPU context."""
    loader = DataLoader(dataset, batch_sampler=batches, num_workers=workers, collate_fn=_as_list,
                        worker_init_fn=_quiet_worker if workers else None,
                        multiprocessing_context="spawn" if workers else None,
                        prefetch_factor=4 if workers else None)
    return iter(loader)


# --------------------------------------------------------------------------- models


@dataclass
class Models:
    rgb: RGBEncoder
    text: TextEncoder
    mllm: MLLMBackend
    prompts: Prompts


def load_prompts_for(models: ModelSpecs) -> Prompts:
    from .prompts import load_prompts

    return load_prompts(models.prompts)


def load_models(specs: ModelSpecs, batch_size: int) -> Models:
    """The three models; the MLLM answers a whole batch in one pass."""
    from .mllm_factory import build_mllm
    from .rgb_encoders import build_rgb_encoder
    from .text_encoder import TextEncoder

    device = specs.resolved_device()
    return Models(rgb=build_rgb_encoder(specs.rgb_encoder, device, batch_size=max(batch_size, 8)),
                  text=TextEncoder(specs.text_encoder, device),
                  mllm=build_mllm(specs.mllm, backend=specs.backend, device=device, batch_size=batch_size),
                  prompts=load_prompts_for(specs))


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
        setattr(self, stage, getattr(self, stage) + seconds)


class _Timer:
    def __init__(self, times: StageTimes, stage: str):
        self.times, self.stage = times, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.times.add(self.stage, time.perf_counter() - self.t0)


def run_models(batch: list[Decoded], models: Models, header: FeatureHeader, times: StageTimes) -> FeatureBlock:
    """RGB embeddings, MLLM answers and description embeddings of one decoded batch."""
    block = empty_block(batch, header)
    block.failures = [(d.name, "video", d.error) for d in batch if d.error is not None]
    ok = [i for i, d in enumerate(batch) if d.image is not None]
    with _Timer(times, "rgb"):
        rgb = batch_or_each(lambda b: encode_rgb(models.rgb, b), [batch[i] for i in ok])
    with _Timer(times, "mllm"):
        answers = batch_or_each(lambda b: models.mllm.answer([d.image for d in b], models.prompts),
                                [batch[i] for i in ok])
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
    with _Timer(times, "text"):
        embeddings = batch_or_each(models.text.encode, [block.description[i] for i in answered])
    for i, emb in zip(answered, embeddings):
        if isinstance(emb, Exception):
            block.failures.append((batch[i].name, "mllm", f"text encoder: {_reason(emb)}"))
        else:
            block.text_valid[i], block.text_embedding[i] = True, emb
    return block


def encode_rgb(encoder, batch: list[Decoded]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per sample: the pooled embedding of the stitched image (D,) and of each crop (K, D)."""
    pooled = encoder.encode([d.image for d in batch])
    frames = encoder.encode([c for d in batch for c in d.crops]).reshape(len(batch), -1, pooled.shape[-1])
    return list(zip(pooled, frames))


def empty_block(batch: list[Decoded], header: FeatureHeader) -> FeatureBlock:
    """All rows invalid: zero features, undetermined answers."""
    n, k = len(batch), int(header.attrs["frames"])
    d, d_text, q = int(header.attrs["rgb_dim"]), int(header.attrs["text_dim"]), len(header.questions)
    return FeatureBlock(
        index=np.array([d.row for d in batch], np.int64), name=[d.name for d in batch],
        rgb_valid=np.zeros(n, bool), rgb_pooled=np.zeros((n, d), np.float32),
        rgb_frames=np.zeros((n, k, d), np.float32), text_valid=np.zeros(n, bool),
        yes_prob=np.full((n, q), np.nan, np.float32), description=[""] * n,
        text_embedding=np.zeros((n, d_text), np.float32))


# --------------------------------------------------------------------------- provenance


def request_attrs(spec: DatasetSpec, models: ModelSpecs, image: TemporalImageConfig, prompts) -> dict:
    """What the user asked for; known before any model loads, so a resume can be checked at once."""
    return {"dataset": spec.name, "mllm_spec": models.mllm, "rgb_encoder_spec": models.rgb_encoder,
            "text_encoder_spec": models.text_encoder, "frames": image.frames,
            "image_size": list(image.image_size), "crop_margin": image.margin, "min_box": image.min_box,
            "prompts": json.dumps(_as_dict(prompts), sort_keys=True)}


def _as_dict(obj) -> dict:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(vars(obj))


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def feature_header(skeletons: SkeletonCache, spec: DatasetSpec, request: dict, models: Models) -> FeatureHeader:
    """The header every part of this feature set carries: request, model identities, versions."""
    attrs = dict(request)
    attrs.update(
        mllm_id=models.mllm.model_id, mllm_revision=models.mllm.revision or "", mllm_backend=models.mllm.name,
        rgb_encoder_id=models.rgb.model_id, rgb_encoder_revision=models.rgb.revision or "",
        rgb_dim=int(models.rgb.dim), rgb_image_size=list(models.rgb.image_size),
        text_encoder_id=models.text.model_id, text_encoder_revision=getattr(models.text, "revision", None) or "",
        text_dim=int(models.text.dim), library_versions=json.dumps(library_versions(), sort_keys=True))
    attrs["params"] = json.dumps(request, sort_keys=True)  # the settings, in one attribute
    class_embedding = models.text.encode(spec.class_names).astype(np.float16)
    return FeatureHeader(names_hash=skeletons.names_hash, num_samples=len(skeletons),
                         questions=list(models.prompts.questions), class_names=spec.class_names,
                         class_embedding=class_embedding, attrs=attrs)


def _plain(value):
    """Attribute values as plain Python (h5py returns numpy types) for comparison."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def attr_differences(expected: dict, found: dict, keys=None) -> list[str]:
    keys = keys if keys is not None else sorted(set(expected) | set(found))
    return [f"{k}: {_plain(found.get(k))!r} here, {_plain(expected.get(k))!r} now"
            for k in keys if _plain(expected.get(k)) != _plain(found.get(k))]


# --------------------------------------------------------------------------- chunks: resume, commit, finish


@dataclass
class Progress:
    """What earlier runs of the same output left: rows in committed parts, or a finished output."""

    done: set[int]
    finished: Path | None = None  # a file that already holds every wanted row


def read_progress(paths: FeaturePaths, wanted: np.ndarray, names_hash: str, request: dict) -> Progress:
    """Rows already done. Parts made for another skeleton file are dropped; parts or an output made
    with other settings are an error (choose another --feature-set or delete them)."""
    for path in dict.fromkeys([paths.output, paths.complete]):  # a shard run: its file, or the merged one
        if path.exists():
            attrs, index, names = _rows_of(path)
            _check_request(path, attrs, request)
            processed = {int(i) for i, name in zip(index, names) if name}  # "" = not extracted (--limit)
            if attrs.get("names_hash") == names_hash and processed.issuperset(wanted.tolist()):
                return Progress(processed, finished=path)
    # files being written when a run was killed (we hold the lock: nobody else writes them)
    for stale in [*paths.parts.glob(".part-*.tmp-*"), *paths.output.parent.glob(f".{paths.output.name}.tmp-*")]:
        stale.unlink()
    done: set[int] = set()
    for part in sorted(paths.parts.glob("part-*.h5")):
        attrs, index, _ = _rows_of(part)
        if attrs.get("names_hash") != names_hash:
            print(f"discarding {part}: made for another skeleton cache")
            part.unlink()
            continue
        _check_request(part, attrs, request)
        done.update(int(i) for i in index)
    return Progress(done)


def _rows_of(path: Path) -> tuple[dict, np.ndarray, list[str]]:
    """Attributes, row indices and sample names of a feature file, without reading its arrays."""
    try:
        with h5py.File(path, "r") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["samples/name"][()]]
            return dict(f.attrs), f["samples/index"][()], names
    except (OSError, KeyError) as e:
        raise CacheError(f"{path}: unreadable feature file ({e}); delete it to start again") from None


def _check_request(path: Path, attrs: dict, request: dict) -> None:
    diff = attr_differences(request, attrs, keys=list(request))
    if diff:
        raise CacheError(f"{path} was made with other settings ({'; '.join(diff)}); use another "
                         f"--feature-set NAME, or delete it to start again")


def check_parts_header(paths: FeaturePaths, header: FeatureHeader) -> None:
    """After the models load: earlier parts must come from the same models and libraries."""
    for part in sorted(paths.parts.glob("part-*.h5"))[:1]:
        found, _ = read_feature_file(part, require_complete=False)
        diff = attr_differences(header.attrs, found.attrs)
        if diff or found.questions != header.questions:
            raise CacheError(f"{paths.parts} holds chunks made with other models or libraries "
                             f"({'; '.join(diff) or 'questions differ'}); delete the folder to start again")


def plan_chunks(wanted: np.ndarray, done: set[int], chunk_size: int, batch_size: int) -> list[np.ndarray]:
    """Pending rows in chunks fixed by position in `wanted`, so a resumed run batches the samples
    exactly as an uninterrupted one (same inputs per model call, same numbers)."""
    size = -(-chunk_size // batch_size) * batch_size
    chunks = [wanted[i:i + size] for i in range(0, len(wanted), size)]
    pending = [np.array([r for r in c if int(r) not in done], np.int64) for c in chunks]
    return [c for c in pending if len(c)]


def batches_of(chunks: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Dataset positions per batch; no batch spans two chunks."""
    out, start = [], 0
    for chunk in chunks:
        out += [list(range(start + i, start + min(i + batch_size, len(chunk))))
                for i in range(0, len(chunk), batch_size)]
        start += len(chunk)
    return out


def commit_chunk(paths: FeaturePaths, header: FeatureHeader, blocks: list[FeatureBlock]) -> FeatureBlock:
    block = FeatureBlock.concat(blocks)
    write_feature_file(paths.parts / f"part-{int(block.index[0]):07d}.h5", header, block, complete=False)
    return block


def finish(paths: FeaturePaths, complete: bool) -> FeatureBlock:
    """Merge the committed parts into the output (crash-safe: written aside, then renamed), then
    drop the parts."""
    parts = sorted(paths.parts.glob("part-*.h5"))
    if complete:  # rows outside --limit stay invalid
        block = merge_feature_parts(parts, paths.output, allow_missing=True)
    else:  # a shard: its own rows only, merged with the other shards later
        header, block = join_parts(parts)
        write_feature_file(paths.output, header, block, complete=False)
    shutil.rmtree(paths.parts)
    return block


def join_parts(parts: list[Path]) -> tuple[FeatureHeader, FeatureBlock]:
    from shared.cache_schema import same_feature_set

    headers, blocks = zip(*(read_feature_file(p, require_complete=False) for p in parts))
    for part, header in zip(parts[1:], headers[1:]):
        if not same_feature_set(headers[0], header):
            raise CacheError(f"{part}: not part of the same feature set as {parts[0]}")
    return headers[0], FeatureBlock.concat(list(blocks))


# --------------------------------------------------------------------------- the run


STAGE_LABELS = {"decode": "decode", "compose": "crop+stitch", "wait": "waiting for decode", "rgb": "RGB encoder",
                "mllm": "MLLM", "text": "text encoder", "write": "write"}


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

    @property
    def failures(self) -> list[tuple[str, str, str]]:
        return self.block.failures if self.block is not None else []

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def report(self) -> str:
        rate = f", {self.processed / self.seconds:.2f} samples/s" if self.processed and self.seconds else ""
        if self.merged_shards:
            lines = [f"{self.output}: {self.total} samples, merged from {self.merged_shards} shards"]
        else:
            lines = [f"{self.output}: {self.total} samples ({self.skipped} done before, {self.processed} now{rate})"]
        if self.block is not None:
            rows = np.array([bool(n) for n in self.block.name])  # "" = outside --limit
            lines.append(f"  RGB features: {int(self.block.rgb_valid[rows].sum())}, text features: "
                         f"{int(self.block.text_valid[rows].sum())} of {int(rows.sum())} extracted samples")
        if self.failures:
            stages = Counter(stage for _, stage, _ in self.failures)
            names = {name for name, _, _ in self.failures}
            name, _, reason = self.failures[0]
            lines.append(f"  {len(names)} samples failed ({', '.join(f'{s}: {c}' for s, c in stages.items())}), "
                         f"listed in the file's failures/ table; first: {name}: {reason}")
        if self.answers:
            lines.append(f"  yes/no answers undetermined (NaN): {self.undetermined} of {self.answers}")
        if self.processed:
            per = {k: 1000 * v / self.processed for k, v in dataclasses.asdict(self.times).items()}
            lines.append("  ms per sample: " + ", ".join(f"{STAGE_LABELS[k]} {v:.1f}" for k, v in per.items()))
            lines.append(f"  start-up: models {self.load_s:.1f} s, then the first decoded batch "
                         f"{self.first_batch_s:.1f} s")
        return "\n".join(lines)


def ensure_skeletons(spec: DatasetSpec, config: ExtractConfig) -> SkeletonCache:
    """The dataset's skeleton cache: built from the raw files when missing or made from other ones
    (see build_skeleton_cache). Used as it is by shards (it is written once, before them), by a
    --limit run, and when it was imported from CTR-GCN's npz (there are no raw files to compare)."""
    path = config.out / spec.name / SKELETON_FILE
    if path.exists() and (config.shard is not None or config.limit or _imported(path)):
        return SkeletonCache(path)
    if config.shard is not None:
        raise MMCLError(f"{path} does not exist: the skeleton file is written once before a sharded "
                        f"run; run `mmcl extract --dataset {spec.name} --skeletons-only` first")
    from .skeleton_cache import build_skeleton_cache

    build_skeleton_cache(spec, config.root, config.out, workers=config.workers or 1, limit=config.limit,
                         progress=config.progress)
    return SkeletonCache(path)


def _imported(path: Path) -> bool:
    return "npz" in json.loads(SkeletonCache(path).attrs.get("params", "{}"))


@dataclass
class Extraction:
    """One run of `config`: its dataset, skeleton cache, output paths and requested settings."""

    config: ExtractConfig
    spec: DatasetSpec
    skeletons: SkeletonCache
    video_dir: Path
    paths: FeaturePaths
    request: dict

    @classmethod
    def prepare(cls, config: ExtractConfig) -> "Extraction":
        spec = get_dataset(config.dataset)
        skeletons = ensure_skeletons(spec, config)
        video_dir = find_dir(config.root, spec.video_dirs, "video", spec)
        name = sanitize(config.feature_set or default_feature_set_name(config.models, config.image))
        request = request_attrs(spec, config.models, config.image, load_prompts_for(config.models))
        return cls(config, spec, skeletons, video_dir, FeaturePaths.of(config.out / spec.name, name, config.shard),
                   request)

    @property
    def wanted(self) -> np.ndarray:
        """Skeleton rows this run covers: its shard, the first --limit of them."""
        n, shard, limit = len(self.skeletons), self.config.shard, self.config.limit
        rows = shard.rows(n) if shard else np.arange(n)
        return rows[:limit] if limit else rows

    def run(self, models: Models | None = None) -> Summary:
        """Extract the pending chunks (loading the models unless given), then write the output."""
        config, paths, wanted = self.config, self.paths, self.wanted
        if not len(wanted):
            raise MMCLError(f"shard {config.shard.index}/{config.shard.count} holds no sample: "
                            f"{self.skeletons.path} has only {len(self.skeletons)}")
        t0 = time.perf_counter()
        with output_lock(paths.output):
            progress = read_progress(paths, wanted, self.skeletons.names_hash, self.request)
            if progress.finished is not None:
                shutil.rmtree(paths.parts, ignore_errors=True)  # left by a run killed after its merge
                return Summary(progress.finished, len(wanted), len(wanted),
                               block=read_feature_file(progress.finished, require_complete=False)[1])
            chunks = plan_chunks(wanted, progress.done, config.chunk_size, config.batch_size)
            summary = Summary(paths.output, len(wanted), len(wanted) - sum(map(len, chunks)))
            if chunks:
                # Workers start before the models load: their start-up overlaps the loading.
                decoded = self.prefetch(chunks)
                t_load = time.perf_counter()
                models = models or load_models(config.models, config.batch_size)
                summary.load_s = time.perf_counter() - t_load
                header = feature_header(self.skeletons, self.spec, self.request, models)
                check_parts_header(paths, header)
                self.run_chunks(chunks, decoded, models, header, summary)
            summary.block = finish(paths, complete=config.shard is None)
        summary.seconds = time.perf_counter() - t0
        return summary

    def prefetch(self, chunks: list[np.ndarray]) -> Iterator[list[Decoded]]:
        config, paths = self.config, self.paths
        for folder in (paths.parts,) + ((paths.images,) if config.save_images else ()):
            folder.mkdir(parents=True, exist_ok=True)
        dataset = TemporalImages(np.concatenate(chunks), self.skeletons, self.spec, self.video_dir, config.image,
                                 paths.images if config.save_images else None)
        return prefetch(dataset, batches_of(chunks, config.batch_size), config.workers)

    def run_chunks(self, chunks: list[np.ndarray], decoded: Iterator[list[Decoded]], models: Models,
                   header: FeatureHeader, summary: Summary) -> None:
        """The main loop: decoded batches through the models; each finished chunk committed."""
        bar = tqdm(total=summary.total, initial=summary.skipped, unit="sample", dynamic_ncols=True,
                   desc=f"{self.spec.name} features", disable=not self.config.progress)
        failing = FailureStreak(self.config.abort_after)
        batches = timed(decoded, summary)
        for chunk in chunks:
            blocks = []
            while sum(map(len, blocks)) < len(chunk):
                batch = next(batches)
                block = run_models(batch, models, header, summary.times)
                failing.update(batch, block)
                blocks.append(block)
                _account(summary, batch, block)
                bar.update(len(batch))
                bar.set_postfix(failed=summary.failed_now, refresh=False)
            with _Timer(summary.times, "write"):
                commit_chunk(self.paths, header, blocks)
        bar.close()


def extract_features(config: ExtractConfig, models: Models | None = None) -> Summary:
    """Extract (or resume, or find complete) the feature set of `config`; returns the summary.
    `models`: already loaded models matching `config.models` (else they are loaded when needed)."""
    extraction = Extraction.prepare(config)
    try:
        return extraction.run(models)
    finally:
        extraction.skeletons.close()


def timed(decoded: Iterator[list[Decoded]], summary: Summary) -> Iterator[list[Decoded]]:
    """The decoded batches, recording how long the models waited for each (for the first: the
    workers' start-up, reported apart)."""
    for i in itertools.count():
        t0 = time.perf_counter()
        batch = next(decoded, None)
        if batch is None:
            return
        if i == 0:
            summary.first_batch_s = time.perf_counter() - t0
        else:
            summary.times.add("wait", time.perf_counter() - t0)
        yield batch


class FailureStreak:
    """Stops the run when the models fail on `limit` samples in a row: a broken model (or out of
    memory), not bad samples; finished chunks are kept."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0

    def update(self, batch: list[Decoded], block: FeatureBlock) -> None:
        decoded = {d.name for d in batch if d.image is not None}
        errors = [(name, reason) for name, stage, reason in block.failures if stage in ("rgb", "mllm")]
        if not decoded:
            return
        self.count = self.count + len(decoded) if decoded <= {name for name, _ in errors} else 0
        if self.count >= self.limit:
            name, reason = errors[-1]
            raise MMCLError(f"the models failed on {self.count} samples in a row (last: {name}: {reason}); "
                            f"stopping. Finished chunks are kept: fix the cause and rerun")


def _account(summary: Summary, batch: list[Decoded], block: FeatureBlock) -> None:
    summary.processed += len(batch)
    summary.failed_now += len({name for name, _, _ in block.failures})
    for d in batch:
        summary.times.add("decode", d.decode_s)
        summary.times.add("compose", d.compose_s)
    answered = block.yes_prob[block.text_valid]
    summary.answers += answered.size
    summary.undetermined += int(np.isnan(answered).sum())


# --------------------------------------------------------------------------- merging shards


def shard_files(folder: Path, name: str) -> list[tuple[Shard, Path]]:
    found = []
    for path in folder.glob(f"{name}.shard-*-of-*.h5"):
        m = re.fullmatch(re.escape(name) + r"\.shard-(\d+)-of-(\d+)\.h5", path.name)
        if m:
            found.append((Shard(int(m[1]), int(m[2])), path))
    return sorted(found, key=lambda s: (s[0].count, s[0].index))


def merge_shards(dataset_dir: Path, name: str) -> Summary:
    """`features/<name>.shard-I-of-N.h5` for I = 0..N-1 -> `features/<name>.h5`; the shards are removed."""
    folder = dataset_dir / FEATURES_DIR
    shards = shard_files(folder, name)
    if not shards:
        present = sorted({p.name.split(".shard-")[0] for p in folder.glob("*.shard-*.h5")})
        hint = f"; shards present for: {', '.join(present)} (choose with --feature-set)" if present else ""
        raise MMCLError(f"no shard files {folder}/{name}.shard-I-of-N.h5 to merge{hint}")
    counts = {s.count for s, _ in shards}
    if len(counts) > 1:
        raise MMCLError(f"{folder}: shards of {name} from runs split in different ways (N = "
                        f"{', '.join(map(str, sorted(counts)))}); keep one set")
    n = counts.pop()
    missing = sorted(set(range(n)) - {s.index for s, _ in shards})
    if missing:
        raise MMCLError(f"{folder}: shard(s) {', '.join(f'{i}/{n}' for i in missing)} of {name} missing; "
                        f"run them (mmcl extract --shard I/{n}) before --merge")
    output = folder / f"{name}.h5"
    t0 = time.perf_counter()
    with ExitStack() as stack:  # no shard may still be running, and nobody else merges
        for lock in [output] + [p for _, p in shards]:
            stack.enter_context(output_lock(lock))
        block = merge_feature_parts([p for _, p in shards], output, allow_missing=True)
        for _, path in shards:
            path.unlink()
    return Summary(output, len(block), len(block), seconds=time.perf_counter() - t0, block=block,
                   merged_shards=n)
