"""Training checkpoints: what they hold, how they are written (atomically) and read back.

A `Checkpoint` is saved as a plain dict loadable with `torch.load(weights_only=True)`:

    format                 CHECKPOINT_FORMAT
    spec                   ModelSpec.to_dict(): model config, input spec, classes, feature identity
    epoch                  epochs completed
    config                 the resolved TrainConfig as a flat dict (TrainConfig.to_dict())
    model                  state dict of MMCLModel (backbone + FAM/FRM heads)
    optimizer, scheduler, scaler (or None), rng {python, numpy, torch, cuda}
    skeletons_names_hash   which samples the training cache held (recomputes the validation split)
    metrics                the last epoch's metrics
    checksum               sha256 of everything above (`checksum`), verified on load

The spec's input (layout, persons, joints) describes the network's input, which may differ from
the cache's (config `layout`/`persons`: Kinect v1 joints mapped to NTU-25): later commands (test,
export, predict, zero-shot) rebuild the model with `build_model` and prepare their input from the
spec. Files of the earlier format (CHECKPOINT_FORMAT_V1, a flat dict) load through `_from_v1`,
the one place that knows that layout; anything else fails with CheckpointError.
"""

from __future__ import annotations

import hashlib
import pickle
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from shared.cache_io import atomic_path, output_error
from shared.errors import MMCLError
from shared.layouts import get_layout

from ..models.mmcl_model import MMCLModel
from ..models.model_spec import FeatureIdentity, InputSpec, ModelSpec, model_config_from_dict, ntu_ids_of
from ..data.streams import canonical_stream

if TYPE_CHECKING:
    from .config import TrainConfig

CHECKPOINT_FORMAT = "mmcl-checkpoint-2"
CHECKPOINT_FORMAT_V1 = "mmcl-checkpoint-1"
REQUIRED = ("format", "spec", "epoch", "config", "model", "checksum")
REQUIRED_V1 = ("format", "epoch", "config", "model_config", "model", "class_names", "dataset")


class CheckpointError(MMCLError):
    """A checkpoint that is missing, unreadable, truncated or not ours."""


@dataclass
class Checkpoint:
    """One training state: the model it describes (spec), its weights and what resumes training."""

    spec: ModelSpec
    epoch: int
    config: dict[str, Any]  # the resolved TrainConfig, TrainConfig.to_dict()
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    skeletons_names_hash: str | None = None

    def build_model(self) -> MMCLModel:
        """The MMCLModel this checkpoint describes, with its weights, in eval mode."""
        model = MMCLModel(self.spec.model)
        model.load_state_dict(self.model)
        return model.eval()

    def train_config(self) -> "TrainConfig":
        """The resolved TrainConfig the model was trained with, its input layout and persons those
        of the spec (configs of the first format may lack them)."""
        from .config import TrainConfig

        cfg = TrainConfig.from_dict(self.config)
        return cfg.with_input(
            layout=cfg.data.layout or self.spec.input.layout, persons=cfg.data.persons or self.spec.input.num_person
        )

    def to_payload(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "spec": self.spec.to_dict(),
            "epoch": self.epoch,
            "config": self.config,
            "model": self.model,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "scaler": self.scaler,
            "rng": self.rng,
            "metrics": self.metrics,
            "skeletons_names_hash": self.skeletons_names_hash,
        }

    def save(self, path: str | Path) -> None:
        """Write under a temporary name, then rename: a kill never leaves a truncated checkpoint.
        The payload's checksum lets `load` refuse a file damaged since (bit rot, a bad copy)."""
        payload = self.to_payload()
        with atomic_path(Path(path)) as tmp:
            try:
                with open(tmp, "wb") as f:  # through Python: a failed write keeps its OSError (errno)
                    torch.save({**payload, "checksum": checksum(payload)}, f)
            except OSError as e:
                raise output_error(Path(path), e) from None
            except RuntimeError as e:  # torch's zip writer wraps the failed write ("enforce fail")
                if not isinstance(e.__context__, OSError):
                    raise
                raise output_error(Path(path), e.__context__) from None

    @classmethod
    def load(cls, path: str | Path) -> "Checkpoint":
        path = Path(path)
        payload = read_torch_file(path)
        fmt = payload.get("format") if isinstance(payload, dict) else None
        if fmt not in (CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_V1):
            raise CheckpointError(f"{path}: not an mmcl training checkpoint (format {CHECKPOINT_FORMAT} expected)")
        v1 = fmt == CHECKPOINT_FORMAT_V1
        missing = [k for k in (REQUIRED_V1 if v1 else REQUIRED) if k not in payload]
        if missing:
            raise CheckpointError(f"{path}: incomplete checkpoint, missing {', '.join(missing)}")
        if not v1 and _checksum_of(path, payload) != payload["checksum"]:
            raise CheckpointError(
                f"{path}: corrupted checkpoint (its contents do not match the checksum written "
                f"with it); use another checkpoint (checkpoints/epoch-NNN.pt) or start afresh"
            )
        try:
            spec = _spec_from_v1(payload) if v1 else ModelSpec.from_dict(payload["spec"])
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{path}: unreadable model description ({type(e).__name__}: {e})") from None
        return cls(
            spec=spec,
            epoch=int(payload["epoch"]),
            config=dict(payload["config"]),
            model=payload["model"],
            optimizer=payload.get("optimizer"),
            scheduler=payload.get("scheduler"),
            scaler=payload.get("scaler"),
            rng=payload.get("rng"),
            metrics=payload.get("metrics"),
            skeletons_names_hash=payload.get("skeletons_names_hash"),
        )


def _checksum_of(path: Path, payload: dict) -> str:
    """The payload's checksum as `checksum` computes it; a payload a flipped bit left malformed (a tensor
    whose stride no longer fits its storage, a value of another type) is a CheckpointError naming the file."""
    try:
        return checksum({k: v for k, v in payload.items() if k != "checksum"})
    except (RuntimeError, TypeError, ValueError, AttributeError, KeyError) as e:
        raise CheckpointError(
            f"{path}: corrupted checkpoint ({type(e).__name__} while checking it); use another "
            f"checkpoint (checkpoints/epoch-NNN.pt) or start afresh"
        ) from None


def checksum(payload: Any) -> str:
    """sha256 over every value of a payload (tensors by dtype, shape and bytes), in a fixed order,
    so that it is recomputed equal from what `torch.load` gives back."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"tensor {t.dtype} {tuple(x.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(x, dict):
            h.update(f"dict {len(x)}".encode())
            for k in sorted(x, key=str):
                feed(str(k))
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"{type(x).__name__} {len(x)}".encode())
            for v in x:
                feed(v)
        else:
            h.update(f"{type(x).__name__} {x!r};".encode())

    feed(payload)
    return "sha256:" + h.hexdigest()


def _spec_from_v1(payload: dict[str, Any]) -> ModelSpec:
    """The ModelSpec of a mmcl-checkpoint-1 file, whose description was flat beside the weights."""
    cfg, model = payload["config"], model_config_from_dict(payload["model_config"])
    layout = get_layout(payload.get("layout") or model.backbone.graph)
    names = list(payload["class_names"])
    f = payload.get("features")
    return ModelSpec(
        model=model,
        input=InputSpec(
            layout=layout.name,
            num_person=int(payload.get("num_person", model.backbone.num_person)),
            num_point=int(payload.get("num_point", model.backbone.num_point)),
            channels=int(model.backbone.in_channels),
            window=int(payload.get("window", cfg["window"])),
            stream=canonical_stream(payload.get("stream", cfg["stream"])),
            augment=cfg["augment"],
            test_crop=float(cfg["test_crop"]),
            origin_joint=layout.center,
        ),
        dataset=payload["dataset"],
        protocol=payload.get("protocol"),
        class_names=names,
        ntu_ids=ntu_ids_of(payload["dataset"], names),
        features=None
        if f is None
        else FeatureIdentity(
            name=f["name"],
            path=str(f.get("path", "")),
            attrs=dict(f.get("attrs", {})),
            questions=list(f.get("questions", [])),
            rgb_dim=f["rgb_dim"],
            text_dim=f["text_dim"],
        ),
    )


class RefusedPickle(CheckpointError):
    """A PyTorch file holding Python objects besides tensors and plain data (weights_only refused it)."""


def read_torch_file(path: Path) -> Any:
    """A .pt/.pth file's payload (tensors and plain data only), or CheckpointError naming the file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain data
        raise RefusedPickle(f"{path}: not an mmcl checkpoint (not a plain PyTorch state file)") from None
    except Exception as e:  # noqa: BLE001 - damaged bytes (a text file, a flipped bit) fail the
        # unpickler in any way: IndexError, KeyError: 101, TypeError, struct.error, ... All mean the same.
        text = str(e).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(e).__name__
        raise CheckpointError(
            f"{path}: unreadable or corrupted checkpoint ({type(e).__name__}: {first}); use "
            f"another checkpoint (checkpoints/epoch-NNN.pt) or start afresh"
        ) from None


def load_checkpoint(path: str | Path) -> Checkpoint:
    return Checkpoint.load(path)


# --------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    # plain lists: weights_only loading accepts no numpy arrays
    np_state["state"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in np_state["state"].items()}
    return {
        "python": random.getstate(),
        "numpy": np_state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    np_state = dict(state["numpy"])
    np_state["state"] = {
        k: (np.asarray(v, np.uint32) if isinstance(v, list) else v) for k, v in np_state["state"].items()
    }
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    """random.setstate wants the nested tuples that a round trip may have turned into lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
