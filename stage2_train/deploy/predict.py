"""Top-k classes of one skeleton sequence: a raw file (NTU .skeleton, NW-UCLA .json, UTD-MHAD
.mat, read by `shared.readers.read_sample`; an .npy/.npz array in the model's joint order, as a
custom dataset's files are) or a cached sample, with an exported model
(`model.ts`, or `model.onnx` when onnxruntime is installed) or a training checkpoint.

The sequence is prepared exactly as `mmcl test` prepares it: mapped to the model's skeleton
layout and number of persons where it differs (as zero-shot does), then the model's own test-time
pipeline (`data.InputPipeline`: translation to the centre joint, centre crop and resize to the
window, stream), read from the export's card or the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from shared.errors import MMCLError
from shared.layouts import describe_layout_maps
from shared.array_skeleton import ARRAY_SUFFIXES, read_array_skeleton
from shared.registry import DATASETS, get_dataset
from shared.skeleton_sample import check_coordinates

from ..training.checkpoint import load_checkpoint
from ..training.device import DEVICE_CHOICES, resolve_device
from .export import CARD_NAME, INPUT_NAME, OUTPUT_NAME, ModelCard, quiet_torchscript
from ..data.input_layout import NoLayoutMap, TooManyPersons

# Raw skeleton files by name ending -> the dataset whose reader parses them (NTU: see below).
RAW_SUFFIXES = {".skeleton": "ntu120", "_skeleton.mat": "utd-mhad", ".json": "nw-ucla"}


# --------------------------------------------------------------------------- the model


@dataclass
class Prediction:
    index: int
    name: str
    probability: float
    logit: float


class Predictor:
    """A skeleton classifier with its card: raw joints (T, M, V, 3) in -> class scores out."""

    def __init__(self, network: Callable[[torch.Tensor], torch.Tensor], card: ModelCard, source: Path,
                 device: torch.device = torch.device("cpu")) -> None:
        self.network, self.card, self.source, self.device = network, card, source, device
        self.pipeline = card.input_pipeline()

    @classmethod
    def from_export(cls, path: str | Path, device: str = "cpu") -> "Predictor":
        """`model.ts` (or the export folder holding it), or `model.onnx` with its `model.json`."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.ts"
        if not path.is_file():
            raise MMCLError(f"{path}: no such exported model (make one with `mmcl export --checkpoint ...`)")
        if path.suffix == ".onnx":
            if device == "cuda":
                raise MMCLError(f"{path}: ONNX models run on the CPU here; pass model.ts for --device cuda")
            return cls(_onnx_network(path), _card_beside(path), path)
        target = resolve_device(device)
        extra = {CARD_NAME: ""}
        try:
            with quiet_torchscript():
                network = torch.jit.load(str(path), map_location=target, _extra_files=extra)
        except (RuntimeError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise MMCLError(f"{path}: not a loadable TorchScript model ({first})") from None
        card = (ModelCard.from_json(extra[CARD_NAME], f"{path} (embedded {CARD_NAME})") if extra[CARD_NAME]
                else _card_beside(path))
        return cls(network.eval(), card, path, target)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> "Predictor":
        path, target = Path(path), resolve_device(device)
        ckpt = load_checkpoint(path)
        return cls(ckpt.build_model().skeleton_model().to(target), ModelCard.of(ckpt, path), path, target)

    def prepare(self, joints: np.ndarray, layout: str) -> torch.Tensor:
        """(T, M, V, 3) joints in `layout` -> the network's (1, C, window, V, M) input."""
        x = to_model_layout(joints, layout, self.card)
        batch = {"joints": torch.from_numpy(x)[None], "length": torch.tensor([len(x)])}
        return self.pipeline(batch)

    @torch.no_grad()
    def logits(self, joints: np.ndarray, layout: str) -> np.ndarray:
        return self.network(self.prepare(joints, layout).to(self.device))[0].float().cpu().numpy()

    def top_k(self, joints: np.ndarray, layout: str, k: int = 5) -> list[Prediction]:
        logits = self.logits(joints, layout)
        probs = torch.softmax(torch.from_numpy(logits).double(), dim=0).numpy()
        order = np.argsort(-logits, kind="stable")[:k]
        return [Prediction(int(i), self.card.class_names[i], float(probs[i]), float(logits[i])) for i in order]


def _card_beside(path: Path) -> ModelCard:
    card = path.with_name(CARD_NAME)
    if not card.is_file():
        raise MMCLError(f"{path}: no model card ({card}); predict needs the {CARD_NAME} that "
                        f"`mmcl export` writes beside the model")
    return ModelCard.from_json(card.read_text(), str(card))


def _onnx_network(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MMCLError(f"{path}: running an ONNX model needs onnxruntime (pip install onnxruntime); "
                        f"or pass the TorchScript model.ts") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])


def to_model_layout(joints: np.ndarray, layout: str, card: ModelCard) -> np.ndarray:
    """Map joints to the model's layout (e.g. Kinect v1 -> NTU-25) and pad absent persons."""
    if joints.ndim != 4 or joints.shape[-1] != 3 or len(joints) == 0:
        raise MMCLError(f"expected joints (T > 0, M, V, 3), got shape {joints.shape}")
    check_coordinates(joints, "the sequence")  # else the scores are NaN, or a confident nonsense
    model = card.spec.input
    try:
        return model.mapping_from(layout, joints.shape[1]).sample(joints)
    except NoLayoutMap:
        raise MMCLError(f"the model takes {model.layout} skeletons; no mapping from {layout} (known: "
                        f"{describe_layout_maps()})") from None
    except TooManyPersons:
        raise MMCLError(f"the sequence holds {joints.shape[1]} persons, the model takes {model.num_person}") from None


# --------------------------------------------------------------------------- the sequence


@dataclass
class Sequence:
    joints: np.ndarray  # (T, M, V, 3) camera coordinates, as the readers return them
    layout: str
    description: str
    true_class: str | None = None


def raw_dataset(path: Path, dataset: str | None, card: ModelCard) -> str:
    """The dataset whose reader parses `path`: --dataset, else from the file name (an NTU file
    is read as the model's own dataset when that is in the NTU format)."""
    if dataset is not None:
        return dataset
    for suffix, name in RAW_SUFFIXES.items():
        if path.name.endswith(suffix):
            own = DATASETS.get(card.dataset)
            if suffix == ".skeleton" and own is not None and own.skeleton_format == "ntu":
                return card.dataset
            return name
    raise MMCLError(f"{path}: cannot tell the dataset from the file name (known endings: "
                    f"{', '.join([*RAW_SUFFIXES, *ARRAY_SUFFIXES])}); pass --dataset")


def read_raw(path: str | Path, dataset: str | None, card: ModelCard) -> Sequence:
    from shared.readers import read_sample

    path = Path(path)
    if not path.is_file():
        raise MMCLError(f"{path}: no such skeleton file")
    if dataset is None and path.suffix in ARRAY_SUFFIXES:  # joints in the model's own layout
        layout = card.spec.input.layout
        joints = read_array_skeleton(path).joints
        return Sequence(joints, layout, f"{path} (array, {layout} joint order)")
    spec = get_dataset(raw_dataset(path, dataset, card))
    sample = read_sample(spec.name, path)
    stem = path.name[: -len("_skeleton.mat")] if path.name.endswith("_skeleton.mat") else path.stem
    meta = spec.parse_name(stem)
    true = spec.class_names[spec.label_of_action(meta.action)] if meta is not None else None
    return Sequence(np.asarray(sample.joints, np.float32), spec.layout_name, f"{path} ({spec.title})", true)


def read_cached(cache: str | Path, sample: str) -> Sequence:
    from shared.cache_schema import SkeletonCache, resolve_dataset_dir

    skeletons = SkeletonCache(resolve_dataset_dir(cache))
    if sample.isdigit():
        row = int(sample)
        if row >= len(skeletons):
            raise MMCLError(f"--sample {row}: {skeletons.path} holds {len(skeletons)} samples "
                            f"(0..{len(skeletons) - 1})")
    else:
        try:
            row = skeletons.names.index(sample)
        except ValueError:
            raise MMCLError(f"--sample {sample!r}: no such sample name in {skeletons.path}") from None
    joints = skeletons.sample(row)["joints"]
    skeletons.close()
    names = skeletons.spec.class_names
    return Sequence(np.asarray(joints, np.float32), skeletons.layout,
                    f"{skeletons.names[row]} ({skeletons.path}, row {row})", names[int(skeletons.labels[row])])


# --------------------------------------------------------------------------- command


@click.command()
@click.argument("skeleton_file", required=False, type=click.Path())
@click.option("--model", "model_path", type=click.Path(),
              help="Exported model: model.ts (or its folder, or model.onnx).")
@click.option("--checkpoint", "checkpoint_path", type=click.Path(), help="A training checkpoint instead of an export.")
@click.option("--cache", type=click.Path(), help="Cache root or dataset directory holding --sample.")
@click.option("--sample", help="Cached sample: row index or sample name.")
@click.option("--dataset", help="Dataset of SKELETON_FILE (default: from its name, e.g. .skeleton -> NTU).")
@click.option("--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option("--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True,
              help="Where the network runs (an ONNX model: the CPU).")
def predict(skeleton_file: str | None, model_path: str | None, checkpoint_path: str | None, cache: str | None,
            sample: str | None, dataset: str | None, top_k: int, device: str) -> None:
    """Top-5 classes of a raw skeleton file or a cached sample (--cache DIR --sample N|NAME)."""
    if (model_path is None) == (checkpoint_path is None):
        raise MMCLError("give one of --model (an exported model.ts) or --checkpoint (a training checkpoint)")
    if (skeleton_file is None) == (sample is None):
        raise MMCLError("give either a skeleton file or --cache DIR --sample INDEX|NAME")
    if sample is not None and cache is None:
        raise MMCLError("--sample needs --cache (the cache root or dataset directory)")
    predictor = (Predictor.from_export(model_path, device) if model_path
                 else Predictor.from_checkpoint(checkpoint_path, device))
    seq = read_raw(skeleton_file, dataset, predictor.card) if skeleton_file else read_cached(cache, sample)
    card = predictor.card
    click.echo(f"sample: {seq.description}" + (f"; true class: {seq.true_class}" if seq.true_class else ""))
    click.echo(f"model:  {predictor.source} ({card.dataset}, {card.stream} stream, {card.num_class} classes)")
    predictions = predictor.top_k(seq.joints, seq.layout, top_k)
    width = max(len(p.name) for p in predictions)
    for rank, p in enumerate(predictions, 1):
        click.echo(f"  {rank}. {p.name:<{width}}  {100 * p.probability:6.2f} %")
