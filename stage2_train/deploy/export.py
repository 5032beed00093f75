"""Export of the skeleton-only network: CTR-GCN and its classifier (S_M), without FAM, FRM or
any RGB/text input, as TorchScript (`model.ts`) and ONNX (`model.onnx`), plus `model.json`, the
model card `predict` needs to prepare a raw sequence exactly as at test time.

    model.ts    TorchScript (traced), input "skeleton" (N, C, window, V, M) float32 in the
                card's stream, output "logits" (N, num_class); the card is embedded as an extra file
    model.onnx  the same graph, dynamic batch axis
    model.json  the model card: the trained model's spec (model_spec.ModelSpec: classes, layout,
                persons, window, stream, test-time preparation, features), input/output, provenance

Every export is verified before it is reported: the TorchScript and ONNX outputs are compared
with the eager model on a batch of another size than the traced one, and the ONNX file passes
`onnx.checker` (and runs in onnxruntime when it is installed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from shared.cache_io import atomic_path, make_folder
from shared.errors import MMCLError

from ..training.checkpoint import Checkpoint, load_checkpoint
from ..models.backbone import Backbone
from ..models.model_spec import InputSpec, ModelSpec
from ..data.streams import canonical_stream
from ..data.transforms import InputPipeline

EXPORT_FORMAT = "mmcl-export-2"
EXPORT_FORMAT_V1 = "mmcl-export-1"
TORCHSCRIPT_NAME, ONNX_NAME, CARD_NAME = "model.ts", "model.onnx", "model.json"
INPUT_NAME, OUTPUT_NAME = "skeleton", "logits"
FORMATS = ("torchscript", "onnx")
ONNX_EXPORTERS = ("torchscript", "dynamo")


# --------------------------------------------------------------------------- the model card


@dataclass(frozen=True)
class ModelCard:
    """What a user of the exported network needs besides the weights: the trained model's spec
    (classes, input layout and test-time preparation, provenance) and where the export came from."""

    spec: ModelSpec
    source: dict[str, Any]  # checkpoint path, epoch, torch version, creation time
    files: dict[str, dict[str, str]] = field(default_factory=dict)  # format -> {name, sha256}
    format: str = EXPORT_FORMAT

    @classmethod
    def of(cls, ckpt: Checkpoint, path: Path) -> "ModelCard":
        return cls(
            spec=ckpt.spec,
            source={
                "checkpoint": str(path),
                "epoch": ckpt.epoch,
                "torch": torch.__version__,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )

    @property
    def dataset(self) -> str:
        return self.spec.dataset

    @property
    def stream(self) -> str:
        return self.spec.input.stream

    @property
    def class_names(self) -> list[str]:
        return self.spec.class_names

    @property
    def num_class(self) -> int:
        return self.spec.num_class

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(C, T, V, M) of one sample."""
        i = self.spec.input
        return i.channels, i.window, i.num_point, i.num_person

    def input_pipeline(self) -> InputPipeline:
        """Padded raw batch -> the network's input, exactly as `mmcl test` prepares it."""
        return self.spec.input.pipeline()

    def to_json(self) -> str:
        c, t, v, m = self.input_shape
        d = {
            "format": self.format,
            "spec": self.spec.to_dict(),
            "input": {
                "name": INPUT_NAME,
                "shape": ["batch", c, t, v, m],
                "axes": "N, C, T, V, M",
                "dtype": "float32",
                "preparation": PREPARATION,
            },
            "output": {
                "name": OUTPUT_NAME,
                "shape": ["batch", self.num_class],
                "meaning": "classifier logits S_M; softmax gives class probabilities",
            },
            "source": self.source,
            "files": self.files,
        }
        return json.dumps(d, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> "ModelCard":
        try:
            d = json.loads(text)
            if d.get("format") == EXPORT_FORMAT_V1:
                return _card_from_v1(d)
            if d.get("format") != EXPORT_FORMAT:
                raise MMCLError(f"{where}: not an mmcl export card (format {EXPORT_FORMAT} expected)")
            return cls(spec=ModelSpec.from_dict(d["spec"]), source=d["source"], files=d.get("files", {}))
        except (json.JSONDecodeError, TypeError, KeyError, AttributeError, ValueError) as e:
            raise MMCLError(f"{where}: unreadable export card ({type(e).__name__}: {e})") from None


def single_window_warning(card: ModelCard) -> str | None:
    """One line for `export` and `predict` when the model was tested on several clips per sample:
    they score one window (the card's preparation), `mmcl test` the clips' mean probability."""
    clips = card.spec.input.test_clips
    if clips <= 1:
        return None
    return (
        f"warning: this model was trained with test_clips {clips}: the exported network and `mmcl predict` "
        f"score one window per sample (a centre crop), whereas `mmcl test` averages the class "
        f"probabilities of {clips} clips"
    )


# How the card's input is prepared from raw joints (spec.input holds the numbers).
PREPARATION = (
    "map the joints to spec.input.layout and pad to num_person; translate every frame so that "
    "origin_joint of actor 1's first real frame is the origin; centre-crop test_crop of the valid "
    "frames and resize to window (crop-rotate) or sample window frames (ucla-view); stream"
)


def _card_from_v1(d: dict[str, Any]) -> ModelCard:
    """A mmcl-export-1 card (a flat description, without the model config) as a ModelCard."""
    p = d["preprocess"]
    spec = ModelSpec(
        model=None,
        input=InputSpec(
            layout=d["layout"],
            num_person=int(d["num_person"]),
            num_point=int(d["num_point"]),
            channels=int(d["in_channels"]),
            window=int(p["window"]),
            stream=canonical_stream(d["stream"]),
            augment=p["augment"],
            test_crop=float(p["test_crop"]),
            origin_joint=int(p["center_joint"]),
        ),
        dataset=d["dataset"],
        protocol=d.get("protocol"),
        class_names=list(d["class_names"]),
        ntu_ids=list(d["ntu_ids"]),
    )
    return ModelCard(spec=spec, source=d["source"], files=d.get("files", {}), format=EXPORT_FORMAT)


# --------------------------------------------------------------------------- export


@dataclass(frozen=True)
class ExportConfig:
    formats: tuple[str, ...] = FORMATS
    # The TorchScript-based ONNX exporter converts the very graph saved as model.ts and takes
    # seconds; torch.export's ("dynamo") is the maintained path but takes minutes on 2 cores.
    onnx_exporter: str = "torchscript"
    opset: int = 17
    trace_batch: int = 2
    verify_batch: int = 3  # another size than trace_batch, so a batch size baked into the graph shows
    rtol: float = 1e-4  # verification tolerance (float32 sums in another order)
    atol: float = 1e-4
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.formats) - set(FORMATS))
        if unknown or not self.formats:
            raise MMCLError(f"export formats {', '.join(unknown) or '(none)'}: choose from {', '.join(FORMATS)}")
        if self.onnx_exporter not in ONNX_EXPORTERS:
            raise MMCLError(f"ONNX exporter {self.onnx_exporter!r}: choose from {', '.join(ONNX_EXPORTERS)}")


@dataclass
class ExportResult:
    out_dir: Path
    card: ModelCard
    paths: dict[str, Path]  # "torchscript", "onnx", "card"
    max_abs_diff: dict[str, float]  # per runtime, against the eager model on the verification batch
    logit_scale: float  # max |logit| of the eager model on that batch (float32 rounding scales with it)
    onnx_runtime: str | None  # onnxruntime version used to verify, None when not installed


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, cfg: ExportConfig = ExportConfig()) -> ExportResult:
    """Export the skeleton network of a training checkpoint (FAM/FRM heads are left out)."""
    checkpoint = Path(checkpoint)
    ckpt = load_checkpoint(checkpoint)
    return export_model(ckpt.build_model().skeleton_model(), ModelCard.of(ckpt, checkpoint), Path(out_dir), cfg)


def export_model(model: Backbone, card: ModelCard, out_dir: Path, cfg: ExportConfig = ExportConfig()) -> ExportResult:
    model = model.cpu().eval()
    if model.config.num_class != card.num_class:
        raise MMCLError(f"export: the network has {model.config.num_class} classes, the card {card.num_class}")
    gen = torch.Generator().manual_seed(cfg.seed)
    example = torch.randn(cfg.trace_batch, *card.input_shape, generator=gen)
    check = torch.randn(cfg.verify_batch, *card.input_shape, generator=gen)
    with torch.no_grad():
        expected = model(check).numpy()
    make_folder(out_dir)
    traced = trace(model, example)
    paths: dict[str, Path] = {}
    diffs: dict[str, float] = {}
    files: dict[str, dict[str, str]] = {}
    runtime = None
    if "onnx" in cfg.formats:
        paths["onnx"] = out_dir / ONNX_NAME
        write_onnx(model, traced, example, paths["onnx"], cfg)
        check_onnx(paths["onnx"])
        runtime, got = run_onnx(paths["onnx"], check.numpy())
        if got is not None:
            diffs["onnxruntime"] = _verified(got, expected, "ONNX (onnxruntime)", cfg)
        files["onnx"] = {"name": ONNX_NAME, "sha256": sha256(paths["onnx"])}
    if "torchscript" in cfg.formats:
        paths["torchscript"] = out_dir / TORCHSCRIPT_NAME
        with torch.no_grad():
            diffs["torchscript"] = _verified(traced(check).numpy(), expected, "TorchScript", cfg)
        # The .ts carries its own card (without the file hashes, which cannot include themselves).
        with atomic_path(paths["torchscript"]) as tmp, quiet_torchscript():
            torch.jit.save(traced, str(tmp), _extra_files={CARD_NAME: card.to_json()})
        files["torchscript"] = {"name": TORCHSCRIPT_NAME, "sha256": sha256(paths["torchscript"])}
    card = dataclasses.replace(card, files=files)
    paths["card"] = out_dir / CARD_NAME
    with atomic_path(paths["card"]) as tmp:
        tmp.write_text(card.to_json())
    return ExportResult(out_dir, card, paths, diffs, float(np.abs(expected).max()), runtime)


@contextlib.contextmanager
def quiet_torchscript():
    """torch 2.13 marks TorchScript (and the ONNX exporter built on it) deprecated, but it is the
    format asked for; the tracer also warns about the backbone's input-shape check, which only
    runs (and passes) while tracing. Silence exactly these."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*(torch\.jit|TorchScript|removed)")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, message="no signature found")
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*treespec")  # torch.export internals
        yield


def trace(model: Backbone, example: torch.Tensor) -> torch.jit.ScriptModule:
    """TorchScript by tracing: the backbone's control flow does not depend on the data."""
    with quiet_torchscript(), torch.no_grad():
        # Our own verification (another batch size) replaces the tracer's re-run check.
        return torch.jit.trace(model, example, check_trace=False)


def write_onnx(
    model: Backbone, traced: torch.jit.ScriptModule, example: torch.Tensor, path: Path, cfg: ExportConfig
) -> None:
    names = dict(input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])
    with atomic_path(path) as tmp, quiet_torchscript():
        if cfg.onnx_exporter == "dynamo":
            torch.onnx.export(
                model,
                (example,),
                str(tmp),
                dynamo=True,
                opset_version=max(cfg.opset, 18),
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
                **names,
            )
        else:
            torch.onnx.export(
                traced,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=cfg.opset,
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                **names,
            )
        if not tmp.exists():
            raise MMCLError(f"{path}: the ONNX exporter wrote no file")


def check_onnx(path: Path) -> None:
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise MMCLError(f"{path}: the exported ONNX model fails onnx.checker: {e}") from None


def run_onnx(path: Path, x: np.ndarray) -> tuple[str | None, np.ndarray | None]:
    """(onnxruntime version, output) or (None, None) when onnxruntime is not installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None, None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return ort.__version__, session.run([OUTPUT_NAME], {INPUT_NAME: x.astype(np.float32)})[0]


def _verified(got: np.ndarray, expected: np.ndarray, what: str, cfg: ExportConfig) -> float:
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=cfg.rtol, atol=cfg.atol):
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("nan")
        raise MMCLError(
            f"export: the {what} model's output differs from the trained model's "
            f"(shape {got.shape} vs {expected.shape}, max |diff| {diff:.3g})"
        )
    return float(np.abs(got - expected).max())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- command


@click.command()
@click.option(
    "--checkpoint",
    "checkpoint_path",
    required=True,
    type=click.Path(),
    help="A training checkpoint (<work dir>/last.pt or checkpoints/epoch-NNN.pt).",
)
@click.option("--out", type=click.Path(), help="Output folder (default: <work dir>/export).")
@click.option(
    "--format",
    "formats",
    type=click.Choice(FORMATS),
    multiple=True,
    help="Export only these formats (repeat; default: both).",
)
@click.option(
    "--onnx-exporter",
    type=click.Choice(ONNX_EXPORTERS),
    default="torchscript",
    show_default=True,
    help="torchscript: converts the traced graph (seconds); dynamo: torch.export (minutes on CPU).",
)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset (dynamo: at least 18).")
def export(checkpoint_path: str, out: str | None, formats: tuple[str, ...], onnx_exporter: str, opset: int) -> None:
    """Export the skeleton-only network (no FAM, FRM or RGB) to TorchScript and ONNX."""
    path = Path(checkpoint_path)
    work_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    out_dir = Path(out) if out else work_dir / "export"
    cfg = ExportConfig(formats=formats or FORMATS, onnx_exporter=onnx_exporter, opset=opset)
    result = export_checkpoint(path, out_dir, cfg)
    card = result.card
    if (warning := single_window_warning(card)) is not None:
        click.echo(warning, err=True)
    click.echo(
        f"exported {card.dataset} {card.stream} network ({card.num_class} classes, input "
        f"{INPUT_NAME} (N, {', '.join(map(str, card.input_shape))})) from {path} (epoch {card.source['epoch']})"
    )
    for key, p in result.paths.items():
        click.echo(f"  {key:<12} {p}")
    checks = [f"{k} max |diff| {v:.2g}" for k, v in result.max_abs_diff.items()]
    if "onnx" in result.paths:
        checks.append("onnx.checker passed")
        if result.onnx_runtime is None:
            checks.append("onnxruntime not installed: ONNX outputs not compared")
    click.echo(
        f"verified against the trained model on a random batch (logits up to {result.logit_scale:.3g}): "
        + "; ".join(checks)
    )
