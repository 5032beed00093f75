"""Top-k classes of one skeleton sequence (`sequence`): a raw file (NTU .skeleton, NW-UCLA .json,
UTD-MHAD .mat; an .npy/.npz array in the model's joint order, as a custom dataset's files are) or a
cached sample, with an exported model
(`model.ts`, or `model.onnx` when onnxruntime is installed) or a training checkpoint.

The sequence is prepared exactly as `mmcl test` prepares it: mapped to the model's skeleton
layout and number of persons where it differs (as zero-shot does), then the model's own test-time
pipeline (`data.transforms.InputPipeline`: translation to the centre joint, centre crop and resize to the
window, stream), read from the export's card or the checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import torch

from shared.cache_io import atomic_path, make_folder
from shared.csv_cells import SafeWriter
from shared.errors import MMCLError
from shared.text_files import read_text
from shared.layouts import LAYOUTS, describe_layout_maps
from shared.array_skeleton import ARRAY_SUFFIXES
from shared.skeleton_sample import check_coordinates

from ..training.checkpoint import load_checkpoint
from ..training.device import DEVICE_CHOICES, resolve_device
from .export import CARD_NAME, INPUT_NAME, OUTPUT_NAME, ModelCard, quiet_torchscript, single_window_warning
from ..data.input_layout import NoLayoutMap, TooManyPersons
from .sequence import RAW_SUFFIXES, Sequence, read_cached, read_raw

# --------------------------------------------------------------------------- the model


@dataclass
class Prediction:
    index: int
    name: str
    probability: float
    logit: float


class Predictor:
    """A skeleton classifier with its card: raw joints (T, M, V, 3) in -> class scores out."""

    def __init__(
        self,
        network: Callable[[torch.Tensor], torch.Tensor],
        card: ModelCard,
        source: Path,
        device: torch.device = torch.device("cpu"),
    ) -> None:
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
        card = (
            ModelCard.from_json(extra[CARD_NAME], f"{path} (embedded {CARD_NAME})")
            if extra[CARD_NAME]
            else _card_beside(path)
        )
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

    @torch.no_grad()
    def logits_batch(self, mapped: list[np.ndarray]) -> np.ndarray:
        """Sequences already in the model's layout (`to_model_layout`), each (T_i, M, V, 3) ->
        logits (N, C): padded with zeros to the longest, as training's batches are."""
        lengths = [len(x) for x in mapped]
        joints = np.zeros((len(mapped), max(lengths), *mapped[0].shape[1:]), np.float32)
        for n, x in enumerate(mapped):
            joints[n, : lengths[n]] = x
        x = self.pipeline({"joints": torch.from_numpy(joints), "length": torch.tensor(lengths)})
        return self.network(x.to(self.device)).float().cpu().numpy()

    def top_k(self, joints: np.ndarray, layout: str, k: int = 5) -> list[Prediction]:
        return ranked_classes(self.logits(joints, layout), self.card.class_names, k)


def _card_beside(path: Path) -> ModelCard:
    card = path.with_name(CARD_NAME)
    if not card.is_file():
        raise MMCLError(
            f"{path}: no model card ({card}); predict needs the {CARD_NAME} that `mmcl export` writes beside the model"
        )
    return ModelCard.from_json(read_text(card, "model card"), str(card))


def _onnx_network(path: Path) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MMCLError(
            f"{path}: running an ONNX model needs onnxruntime (pip install onnxruntime); "
            f"or pass the TorchScript model.ts"
        ) from None
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's own error types (InvalidProtobuf, Fail, ...)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MMCLError(
            f"{path}: not a loadable ONNX model ({first[:200]}); export it again with `mmcl export --format onnx`"
        ) from None
    return lambda x: torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0])


def to_model_layout(joints: np.ndarray, layout: str, card: ModelCard, what: str = "the sequence") -> np.ndarray:
    """Map joints to the model's layout (e.g. Kinect v1 -> NTU-25) and pad absent persons; `what`
    names the sequence in the messages (its file)."""
    if joints.ndim != 4 or joints.shape[-1] != 3 or len(joints) == 0:
        raise MMCLError(f"{what}: expected joints (T > 0, M, V, 3), got shape {joints.shape}")
    check_coordinates(joints, what)  # else the scores are NaN, or a confident nonsense
    model = card.spec.input
    try:
        return model.mapping_from(layout, joints.shape[1]).sample(joints)
    except NoLayoutMap:
        raise MMCLError(
            f"{what}: the model takes {model.layout} skeletons; no mapping from {layout} (known: "
            f"{describe_layout_maps()})"
        ) from None
    except TooManyPersons:
        raise MMCLError(f"{what}: it holds {joints.shape[1]} persons, the model takes {model.num_person}") from None


# --------------------------------------------------------------------------- command


def skeleton_files(paths: list[str]) -> list[Path]:
    """The files named, and in each folder named the files with a known skeleton ending (sorted,
    recursively); a path that does not exist stays in the list, to be reported as the file it is."""
    endings = (*RAW_SUFFIXES, *ARRAY_SUFFIXES)
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(endings))
            if not found:
                raise MMCLError(f"{p}: no skeleton files in this folder (known endings: {', '.join(endings)})")
            out += found
        else:
            out.append(p)
    return out


@dataclass
class FileResult:
    """One file's outcome: its top-k, or the one line saying why it could not be predicted."""

    path: Path
    sequence: Sequence | None = None
    predictions: list[Prediction] | None = None
    error: str | None = None


def predict_files(
    predictor: Predictor, paths: list[Path], dataset: str | None, layout: str | None, top_k: int, batch_size: int
) -> list[FileResult]:
    """Every file read and mapped on its own (a bad one is recorded, never raised), then scored in
    batches of `batch_size`."""
    results, ready = [], []
    for path in paths:
        result = FileResult(path)
        try:
            result.sequence = read_raw(path, dataset, predictor.card, layout)
            ready.append(
                (result, to_model_layout(result.sequence.joints, result.sequence.layout, predictor.card, str(path)))
            )
        except MMCLError as e:
            result.error = str(e) if str(e).startswith(str(path)) else f"{path}: {e}"
        results.append(result)
    names = predictor.card.class_names
    for start in range(0, len(ready), batch_size):
        chunk = ready[start : start + batch_size]
        logits = predictor.logits_batch([x for _, x in chunk])
        for (result, _), row in zip(chunk, logits):
            result.predictions = ranked_classes(row, names, top_k)
    return results


def ranked_classes(logits: np.ndarray, names: list[str], k: int) -> list[Prediction]:
    probs = torch.softmax(torch.from_numpy(logits).double(), dim=0).numpy()
    order = np.argsort(-logits, kind="stable")[:k]
    return [Prediction(int(i), names[i], float(probs[i]), float(logits[i])) for i in order]


def write_predictions(out: Path, results: list[FileResult]) -> None:
    """--out: `.csv` (one row per file: its top-k as name and % pairs, or its error) or `.json`."""
    rows = [
        {
            "file": str(r.path),
            "true_class": r.sequence.true_class if r.sequence else None,
            "predictions": [
                {"rank": n, "index": p.index, "name": p.name, "probability_percent": round(100 * p.probability, 4)}
                for n, p in enumerate(r.predictions or [], 1)
            ],
            "error": r.error,
        }
        for r in results
    ]
    make_folder(out.parent)
    if out.suffix == ".json":
        with atomic_path(out) as tmp:
            tmp.write_text(json.dumps(rows, indent=2) + "\n")
        return
    k = max((len(r["predictions"]) for r in rows), default=0)
    header = ["file", "true_class", *[f"{what}_{n}" for n in range(1, k + 1) for what in ("class", "percent")], "error"]
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as f:
        w = SafeWriter(f)  # class names and file names from the user: no spreadsheet formulas
        w.writerow(header)
        for r in rows:
            ranks = [v for p in r["predictions"] for v in (p["name"], f"{p['probability_percent']:.2f}")]
            w.writerow([r["file"], r["true_class"] or "", *ranks, *[""] * (2 * k - len(ranks)), r["error"] or ""])


@click.command()
@click.argument("skeletons", nargs=-1, type=click.Path())
@click.option(
    "--model", "model_path", type=click.Path(), help="Exported model: model.ts (or its folder, or model.onnx)."
)
@click.option("--checkpoint", "checkpoint_path", type=click.Path(), help="A training checkpoint instead of an export.")
@click.option("--cache", type=click.Path(), help="Cache root or dataset directory holding --sample.")
@click.option("--sample", help="Cached sample: row index or sample name.")
@click.option("--dataset", help="Dataset of the skeleton files (default: from each name, e.g. .skeleton -> NTU).")
@click.option(
    "--layout",
    type=click.Choice(sorted(LAYOUTS)),
    help="Joint order of .npy/.npz files (default: the model's); mapped to the model's where it differs.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Also write the predictions to a .csv or .json file (one row per file, errors included).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Files scored together.")
@click.option("--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--device",
    type=click.Choice(DEVICE_CHOICES),
    default="auto",
    show_default=True,
    help="Where the network runs (an ONNX model: the CPU).",
)
def predict(
    skeletons: tuple[str, ...],
    model_path: str | None,
    checkpoint_path: str | None,
    cache: str | None,
    sample: str | None,
    dataset: str | None,
    layout: str | None,
    out: str | None,
    batch_size: int,
    top_k: int,
    device: str,
) -> int:
    """Top-5 classes of raw skeleton files (several, or folders of them, in one call) or of a cached
    sample (--cache DIR --sample N|NAME). A file that cannot be predicted is one line; the others
    are still predicted, and the exit status is then 1."""
    if (model_path is None) == (checkpoint_path is None):
        raise MMCLError("give one of --model (an exported model.ts) or --checkpoint (a training checkpoint)")
    if (not skeletons) == (sample is None):
        raise MMCLError(
            "give either a skeleton file or --cache DIR --sample INDEX|NAME (files and folders may be many)"
        )
    if sample is not None and cache is None:
        raise MMCLError("--sample needs --cache (the cache root or dataset directory)")
    if out is not None and Path(out).suffix not in (".csv", ".json"):
        raise MMCLError(f"--out {out}: name a .csv or .json file")
    predictor = (
        Predictor.from_export(model_path, device) if model_path else Predictor.from_checkpoint(checkpoint_path, device)
    )
    card = predictor.card
    click.echo(
        f"model:  {predictor.source} ({card.dataset}, {card.stream} stream, {card.num_class} classes, "
        f"{card.spec.input.layout} joints)"
    )
    if (warning := single_window_warning(card)) is not None:
        click.echo(warning, err=True)
    if sample is not None:
        seq = read_cached(cache, sample)
        mapped = to_model_layout(seq.joints, seq.layout, card)
        results = [
            FileResult(
                Path(seq.description), seq, ranked_classes(predictor.logits_batch([mapped])[0], card.class_names, top_k)
            )
        ]
    else:
        paths = skeleton_files(list(skeletons))
        results = predict_files(predictor, paths, dataset, layout, top_k, batch_size)
        if len(results) == 1 and results[0].error:  # one file: its problem is the command's
            raise MMCLError(results[0].error)
    for r in results:
        show(r)
    if out is not None:
        write_predictions(Path(out), results)
        click.echo(f"predictions: {out}")
    failed = sum(r.error is not None for r in results)
    if failed:
        click.echo(f"{failed} of {len(results)} files could not be predicted (lines starting 'error:')", err=True)
    return 1 if failed else 0


def show(r: FileResult) -> None:
    if r.error:
        click.echo(f"error: {r.error}", err=True)
        return
    seq = r.sequence
    click.echo(f"sample: {seq.description}" + (f"; true class: {seq.true_class}" if seq.true_class else ""))
    width = max(len(p.name) for p in r.predictions)
    for rank, p in enumerate(r.predictions, 1):
        click.echo(f"  {rank}. {p.name:<{width}}  {100 * p.probability:6.2f} %")
