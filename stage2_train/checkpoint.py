"""Training checkpoints: what they hold, how they are written (atomically) and read back.

A checkpoint is a plain dict loadable with `torch.load(weights_only=True)`:

    format            CHECKPOINT_FORMAT
    epoch             epochs completed
    config            the resolved TrainConfig as a dict
    model_config      {"backbone": CTRGCNConfig fields, plus MMCLModelConfig's other fields}
    model             state dict of MMCLModel (backbone + FAM/FRM heads)
    optimizer, scheduler, scaler (or None), rng {python, numpy, torch, cuda}
    dataset, protocol, stream, class_names, layout, num_person, num_point, window
    features          None, or {name, attrs (strings), rgb_dim, text_dim} for provenance
    metrics           the last epoch's metrics

`layout`, `num_person` and `num_point` describe the network's input, which may differ from the
cache's (config `layout`/`persons`: Kinect v1 joints mapped to NTU-25): later commands (test,
ensemble, export, predict, zero-shot) rebuild the model with `build_model` and prepare their
input in that layout. `load_matching_weights` starts a fine-tuning run from a checkpoint.
"""

from __future__ import annotations

import json
import pickle
import random
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shared.cache_io import atomic_path
from shared.errors import MMCLError

from .ctrgcn import CTRGCNConfig
from .mmcl_model import MMCLModel, MMCLModelConfig

CHECKPOINT_FORMAT = "mmcl-checkpoint-1"
REQUIRED = ("format", "epoch", "config", "model_config", "model", "class_names", "dataset")


class CheckpointError(MMCLError):
    """A checkpoint that is missing, unreadable, truncated or not ours."""


def model_config_to_dict(cfg: MMCLModelConfig) -> dict[str, Any]:
    return asdict(cfg)


def model_config_from_dict(d: dict[str, Any]) -> MMCLModelConfig:
    names = {f.name for f in fields(MMCLModelConfig)}
    d = {k: v for k, v in d.items() if k in names}
    return MMCLModelConfig(**{**d, "backbone": CTRGCNConfig(**d["backbone"])})


def build_model(ckpt: dict[str, Any]) -> MMCLModel:
    """The MMCLModel a checkpoint describes, with its weights, in eval mode."""
    model = MMCLModel(model_config_from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    return model.eval()


def plain_attrs(attrs: dict) -> dict[str, str | int | float | bool]:
    """HDF5 attributes (numpy scalars and arrays) as JSON-safe values for the checkpoint."""
    def plain(v):
        if isinstance(v, (np.generic,)):
            return v.item()
        if isinstance(v, (str, int, float, bool)):
            return v
        return json.dumps(v.tolist() if isinstance(v, np.ndarray) else v, default=str)
    return {str(k): plain(v) for k, v in attrs.items()}


# --------------------------------------------------------------------------- RNG state


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=False)
    # plain lists: weights_only loading accepts no numpy arrays
    np_state["state"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                         for k, v in np_state["state"].items()}
    return {
        "python": random.getstate(),
        "numpy": np_state,
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_tuples(state["python"]))
    np_state = dict(state["numpy"])
    np_state["state"] = {k: (np.asarray(v, np.uint32) if isinstance(v, list) else v)
                         for k, v in np_state["state"].items()}
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    """random.setstate wants the nested tuples that a round trip may have turned into lists."""
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


# --------------------------------------------------------------------------- files


def save_checkpoint(payload: dict[str, Any], path: Path) -> None:
    """Write under a temporary name, then rename: a kill never leaves a truncated checkpoint."""
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, **payload}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refuses anything but tensors and plain data
        raise CheckpointError(f"{path}: not an mmcl checkpoint (not a plain PyTorch state file)") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        text = str(e).strip()
        first = text.splitlines()[0].split(". ")[0] if text else type(e).__name__
        raise CheckpointError(f"{path}: unreadable or corrupted checkpoint ({first}); use another "
                              f"checkpoint (checkpoints/epoch-NNN.pt) or start afresh") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an mmcl training checkpoint "
                              f"(format {CHECKPOINT_FORMAT} expected)")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: incomplete checkpoint, missing {', '.join(missing)}")
    return ckpt


# --------------------------------------------------------------------------- fine-tuning

# Heads that load whole or not at all: a projection MLP whose first layer is sized by another
# feature width would otherwise keep its second layer, trained against a first it never saw.
WHOLE_HEADS = ("fam.", "frm.mlp.")


@dataclass(frozen=True)
class WeightTransfer:
    """Which of a model's tensors a checkpoint initialises, which keep their fresh
    initialisation (and why), and which checkpoint tensors the model has no place for."""

    loaded: list[str]
    fresh: dict[str, str]
    unused: list[str]

    def report(self, source: str | Path) -> list[str]:
        """Lines for the user: counts per module, then each re-initialised tensor and why."""
        modules = sorted({_module(k) for k in [*self.loaded, *self.fresh]})
        counts = ", ".join(f"{m} {sum(_module(k) == m for k in self.loaded)}/"
                           f"{sum(_module(k) == m for k in [*self.loaded, *self.fresh])}" for m in modules)
        lines = [f"--init-from {source}: {len(self.loaded)} tensors loaded, {len(self.fresh)} re-initialised "
                 f"(loaded/all per module: {counts})"]
        lines += [f"  re-initialised {name}: {why}" for name, why in self.fresh.items()]
        if self.unused:
            unused = sorted({_module(k) for k in self.unused})
            lines.append(f"  not used: {len(self.unused)} checkpoint tensors ({', '.join(unused)}) "
                         f"this model has no place for")
        return lines


def _module(name: str) -> str:
    return name.split(".", 1)[0]


def plan_transfer(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> WeightTransfer:
    """Every target tensor whose name and shape the source has loads, except within a head of
    WHOLE_HEADS that does not match entirely. The classifier (backbone.fc) and FRM's class-wise
    vectors load only when the class count is the same, data_bn only with the same joints and
    persons, the graph adjacencies only with the same joints."""
    def mismatch(name: str) -> str | None:
        if name not in source:
            return "not in the checkpoint"
        a, b = tuple(source[name].shape), tuple(target[name].shape)
        return None if a == b else f"shape {a} in the checkpoint, {b} here"

    why = {name: mismatch(name) for name in target}
    for head in WHOLE_HEADS:
        members = [k for k in target if k.startswith(head)]
        broken = next((k for k in members if why[k]), None)
        for k in members if broken else ():
            why[k] = why[k] or f"{head[:-1]} loads whole and {broken} differs ({why[broken]})"
    return WeightTransfer(loaded=[k for k in target if why[k] is None],
                          fresh={k: w for k, w in why.items() if w is not None},
                          unused=[k for k in source if k not in target])


def load_matching_weights(model: nn.Module, ckpt: dict[str, Any]) -> WeightTransfer:
    """Initialise `model` from a checkpoint's weights as `plan_transfer` decides; the other
    tensors keep the initialisation the model was built with (a re-initialised classifier)."""
    source = ckpt["model"]
    plan = plan_transfer(source, model.state_dict())
    model.load_state_dict({k: source[k] for k in plan.loaded}, strict=False)
    return plan
