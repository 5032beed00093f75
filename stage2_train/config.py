"""Training configuration: one dataclass, named recipes, and how flags, files and recipes combine.

Precedence, lowest first: the dataclass defaults < the recipe (and its dataset variant) < the
config file (YAML or TOML) < command-line flags. On `--resume` the checkpoint's resolved config
takes the recipe's place, so a resumed run keeps its settings unless a flag changes them.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from shared.cache_schema import SkeletonCache, resolve_features
from shared.errors import MMCLError
from shared.layouts import LAYOUTS, layout_map

from .streams import canonical_stream

if TYPE_CHECKING:
    from .model_spec import InputSpec

MIXED_PRECISION = ("no", "fp16", "bf16")
AUGMENTS = ("crop-rotate", "ucla-view")  # CTR-GCN's NTU feeder, CTR-GCN's NW-UCLA feeder
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    # --- data
    cache: str = "cache"  # cache root or one dataset's directory
    dataset: str = ""  # filled in from the cache
    protocol: str | None = None  # None: the dataset's first protocol
    stream: str = "joint"
    features: str | None = None  # feature set name; None: the only one present
    work_dir: str | None = None  # None: runs/<dataset>-<protocol>-<stream>
    window: int = 64  # frames per sample after crop + resize
    augment: str = "crop-rotate"
    crop: tuple[float, float] = (0.5, 1.0)  # training crop ratio of the valid frames
    test_crop: float = 0.95
    rotate: float = 0.3  # radians, each axis uniform in [-rotate, rotate]
    repeat: int = 1  # the training set is seen `repeat` times per epoch (NW-UCLA: 5)
    val_split: float = 0.0  # fraction of the training samples held out for validation
    val_seed: int = 0  # draws the validation split; apart from `seed` so that streams trained
    # with different seeds hold out the same samples (the ensemble weight search needs that)
    workers: int | None = None  # None: 0 when the frames are in memory, else up to 4
    in_memory: bool | None = None  # None: load the frames when they fit in memory
    # The network's input; None: the cache's (resolve_input_layout fills them in before training).
    layout: str | None = None  # skeleton layout (another than the cache's maps the joints)
    persons: int | None = None  # persons per sample (more than the cache's pads absent ones)
    # --- model
    use_fam: bool = True
    use_frm: bool = True
    frm_vectors: int = 2
    base_channel: int = 64  # CTR-GCN width (64 in the reference)
    drop_out: float = 0.0
    # --- loss
    lambda_align: float = 0.1
    lambda_refine: float = 0.2
    tau: float = 0.4
    # --- optimisation
    recipe: str | None = None
    epochs: int = 110
    batch_size: int = 200
    test_batch_size: int | None = None  # None: batch_size
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 4e-4
    warmup: int = 5  # epochs of linear warm-up
    steps: list[int] = field(default_factory=lambda: [90, 100])  # epochs where lr *= lr_decay
    lr_decay: float = 0.1
    seed: int = 1
    mixed_precision: str = "no"
    device: str = "auto"
    test_every: int = 0  # evaluate on the test split every N epochs (0: only at the end)
    init_from: str | None = None  # checkpoint whose weights start the run (fine-tuning)

    def __post_init__(self) -> None:
        self.crop = tuple(float(x) for x in self.crop)  # YAML gives lists
        self.steps = sorted(int(s) for s in self.steps)
        self.stream = canonical_stream(self.stream)
        checks = [
            (self.mixed_precision in MIXED_PRECISION, f"mixed_precision must be one of {MIXED_PRECISION}"),
            (self.augment in AUGMENTS, f"augment must be one of {AUGMENTS}"),
            (self.device in DEVICES,
             f"device must be one of {DEVICES} (choose a GPU with CUDA_VISIBLE_DEVICES)"),
            (0.0 <= self.val_split < 1.0, "val_split must be in [0, 1)"),
            (len(self.crop) == 2 and 0 < self.crop[0] <= self.crop[1] <= 1,
             "crop must be 0 < low <= high <= 1"),
            (0 < self.test_crop <= 1, "test_crop must be in (0, 1]"),
            (self.layout is None or self.layout in LAYOUTS,
             f"layout must be one of {', '.join(LAYOUTS)}"),
            (self.persons is None or self.persons >= 1, "persons must be at least 1"),
            (self.window > 1 and self.epochs >= 0 and self.batch_size > 0 and self.repeat >= 1,
             "window > 1, epochs >= 0, batch_size > 0 and repeat >= 1 are required"),
        ]
        for ok, message in checks:
            if not ok:
                raise MMCLError(f"training config: {message}")

    @property
    def eval_batch_size(self) -> int:
        return self.test_batch_size or self.batch_size

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["crop"] = list(self.crop)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """A saved config (`to_dict`, config.yaml, a checkpoint's) back as a TrainConfig."""
        return cls(**_normalise_keys(values, "saved config"))

    def with_input(self, layout: str | None, persons: int | None) -> "TrainConfig":
        """This config with the network's input layout and persons resolved."""
        return dataclasses.replace(self, layout=layout, persons=persons)


FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}

# --------------------------------------------------------------------------- recipes

RECIPES: dict[str, dict[str, Any]] = {
    # MMCL's NTU recipe (the reference's configs).
    "mmcl": dict(epochs=110, batch_size=200, lr=0.1, weight_decay=4e-4, warmup=5, steps=[90, 100]),
    # CTR-GCN's own NTU recipe.
    "ctrgcn": dict(epochs=65, batch_size=64, lr=0.1, weight_decay=4e-4, warmup=5, steps=[35, 55]),
    # Sized for `./pipeline.sh` on 2 CPU cores: a narrow network on short windows, a few epochs.
    # Batches of 8 give the motion streams enough steps (16: near chance after 4 epochs).
    "demo": dict(epochs=4, batch_size=8, lr=0.1, weight_decay=4e-4, warmup=1, steps=[3],
                 window=32, base_channel=16),
}

# CTR-GCN's NW-UCLA recipe; MMCL publishes none, so its MMCL runs use the same schedule.
_NW_UCLA = dict(epochs=65, batch_size=16, weight_decay=1e-4, warmup=5, steps=[50], window=52,
                repeat=5, augment="ucla-view")
DATASET_VARIANTS: dict[tuple[str, str], dict[str, Any]] = {
    ("ctrgcn", "nw-ucla"): _NW_UCLA,
    ("mmcl", "nw-ucla"): _NW_UCLA,
}


def default_recipe(dataset: str, use_fam: bool, use_frm: bool) -> str:
    if dataset == "demo":
        return "demo"
    return "mmcl" if (use_fam or use_frm) else "ctrgcn"


def recipe_values(name: str, dataset: str) -> dict[str, Any]:
    if name not in RECIPES:
        raise MMCLError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return {**RECIPES[name], **DATASET_VARIANTS.get((name, dataset), {}), "recipe": name}


# --------------------------------------------------------------------------- files


def _normalise_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    out = {str(k).replace("-", "_"): v for k, v in values.items()}
    unknown = sorted(set(out) - FIELDS)
    if unknown:
        raise MMCLError(f"{source}: unknown setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(FIELDS))}")
    return out


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """Settings from a YAML (.yaml/.yml, also our saved config.yaml) or TOML (.toml) file."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = path.read_text()
        values = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except OSError as e:
        raise MMCLError(f"{path}: cannot read config file ({e.strerror})") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
        kind = "TOML" if path.suffix == ".toml" else "YAML"
        raise MMCLError(f"{path}: not a valid {kind} file: {e}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise MMCLError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return _normalise_keys(values, str(path))


def save_config(cfg: TrainConfig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# --------------------------------------------------------------------------- resolution


def resolve_config(dataset: str, file_values: dict[str, Any], flags: dict[str, Any],
                   base: dict[str, Any] | None = None) -> TrainConfig:
    """Combine the layers for `dataset`. `flags` holds only the flags the user gave.

    `base` replaces the recipe layer (a resumed run's saved config).
    """
    flags = _normalise_keys({k: v for k, v in flags.items() if v is not None}, "command line")
    user = {**file_values, **flags}
    if base is None:
        use_fam, use_frm = user.get("use_fam", True), user.get("use_frm", True)
        name = user.get("recipe") or default_recipe(dataset, use_fam, use_frm)
        base = recipe_values(name, dataset)
    values = {**_normalise_keys(base, "saved config"), **user, "dataset": dataset}
    return TrainConfig(**values)


def finalize_config(cfg: TrainConfig, dataset_dir: Path, protocols: list[str]) -> TrainConfig:
    """Fill in what depends on the cache: its dataset directory, protocol and work dir."""
    protocol = cfg.protocol or protocols[0]
    if protocol not in protocols:
        raise MMCLError(f"dataset {cfg.dataset!r} ({dataset_dir}) has no protocol {protocol!r}; "
                        f"choose one of: {', '.join(protocols)}")
    work_dir = cfg.work_dir or str(Path("runs") / f"{cfg.dataset}-{protocol}-{cfg.stream}")
    features = cfg.features
    if cfg.use_fam or cfg.use_frm:  # fail before anything is written when the features are missing
        features = resolve_features(dataset_dir, cfg.features).stem
    return dataclasses.replace(cfg, cache=str(Path(dataset_dir).resolve()), protocol=protocol,
                               work_dir=work_dir, features=features)


# Settings a resumed run cannot change: they shape the model or the data it was trained on.
FIXED_ON_RESUME = ("dataset", "protocol", "stream", "use_fam", "use_frm", "frm_vectors", "base_channel",
                   "window", "augment", "val_split", "val_seed", "seed", "layout", "persons")


def check_resume_compatible(cfg: TrainConfig, saved: TrainConfig, checkpoint: Path) -> None:
    changed = [k for k in FIXED_ON_RESUME if getattr(saved, k) != getattr(cfg, k)]
    if changed:
        detail = ", ".join(f"{k} {getattr(saved, k)!r} -> {getattr(cfg, k)!r}" for k in changed)
        raise MMCLError(f"--resume: {checkpoint} was trained with other settings ({detail}); drop "
                        f"those flags or start a new work dir")


# --------------------------------------------------------------------------- input layout


def resolve_input_layout(cfg: TrainConfig, skeletons: SkeletonCache,
                         init: InputSpec | None = None) -> tuple[TrainConfig, list[str]]:
    """Fill in the network's input layout and persons; returns the config and lines telling the
    user how the input differs from the cache's, and why.

    Defaults: the cache's own. With --init-from (`init`: the input spec of the checkpoint it
    names), the checkpoint's number of persons (or the
    cache's, if more) and, when the cache's joints map to it, the checkpoint's layout, so the
    layout-dependent tensors (data_bn, the graph's adjacency) load too: a Kinect v1 cache (SYSU,
    NW-UCLA) fine-tuned from an NTU-25 model is read as NTU-25. Checkpoints record the resolved
    values, so test, export, predict and zero-shot prepare their input the same way.
    """
    # Imported here: `mmcl --help` and the config file tests need no torch.
    from .input_layout import input_layout

    layout, persons, notes = cfg.layout, cfg.persons, []
    if init is not None and (layout is None or persons is None):
        init_layout, init_persons = init.layout, init.num_person
        if layout is None and init_layout != skeletons.layout:
            if layout_map(skeletons.layout, init_layout) is not None:
                layout = init_layout
                notes.append(f"mapping the cache's {skeletons.layout} joints to {init_layout}, the layout "
                             f"--init-from {cfg.init_from} was trained on (--layout {skeletons.layout} "
                             f"keeps the cache's)")
            else:
                notes.append(f"--init-from {cfg.init_from} was trained on {init_layout} skeletons, to which "
                             f"{skeletons.layout} does not map: its layout-dependent tensors start fresh")
        if persons is None:
            persons = max(init_persons, skeletons.num_person)
    view = input_layout(skeletons, layout, persons)  # checks the mapping and the persons
    cfg = cfg.with_input(layout=view.layout.name, persons=view.num_person)
    if view.changed:
        notes.insert(0, f"input: {skeletons.dataset} skeletons {view.describe()}")
    return cfg, notes
