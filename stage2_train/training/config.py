"""Training configuration: the nested TrainConfig, how flags, files and the named recipes (`recipes`) combine.

Precedence, lowest first: the dataclass defaults < the recipe (and its dataset variant) < the
config file (YAML or TOML) < command-line flags. On `--resume` the checkpoint's resolved config
takes the recipe's place, so a resumed run keeps its settings unless a flag changes them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shared.text_files import read_text

from shared.cache_schema import resolve_features
from shared.errors import MMCLError

from ..data.augment_config import AugmentConfig
from ..data.data_config import DataConfig
from ..models.loss_config import MMCLLossConfig
from ..models.model_config import ArchitectureConfig
from .optim_config import OptimConfig
from .recipes import DATASET_VARIANTS, RECIPES, default_recipe
from ..settings import AT_LEAST_ONE, NON_NEGATIVE, bound, check_fields, flat_settings, setting

MIXED_PRECISION = ("auto", "no", "fp16", "bf16")  # auto: device.resolve_mixed_precision
DEVICES = ("auto", "cpu", "cuda")
COMPILE = ("no", "inductor", "aot_eager", "eager")  # eager/aot_eager: graph capture only (tests)


@dataclass(frozen=True)
class TrainConfig:
    """A training run: the configs it uses, nested, plus the run's own settings. Each section's
    defaults are written once, in its own module; `to_dict`/`from_dict` speak the flat keys of
    flags, config files, recipes and the saved config.yaml (`SETTINGS`, from the fields' `setting()`)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    loss: MMCLLossConfig = field(default_factory=MMCLLossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    recipe: str | None = None  # `mmcl train --recipe` (its help lists the recipes: cli.py)
    work_dir: str | None = setting(
        None,
        flag=True,
        path="any",
        help="Output folder, used exactly (default: a new runs/<dataset>-<protocol>-<stream>-seed<S>-<time> "
        "per run, linked from runs/<dataset>-<protocol>-<stream>-latest).",
    )
    seed: int = setting(
        1, flag=True, fixed_on_resume=True, check=bound(lambda v: 0 <= v < 2**32, "in [0, 2**32)")
    )  # numpy's seed range
    mixed_precision: str = setting(
        "auto",
        flag=True,
        choices=MIXED_PRECISION,
        help="Autocast. Default auto: bf16 on a CUDA GPU that computes it natively (Ampere on), "
        "float32 (no) everywhere else, CPUs included. bf16 and fp16 change numerics; on CPU bf16 is "
        "an explicit choice (its speed-up depends on the CPU: bench/bench_precision.py measures it).",
    )
    compile: str = setting(
        "no",
        flag=True,
        choices=COMPILE,
        bare="inductor",
        help="torch.compile the model; --compile alone: inductor (default {default}: compiling costs minutes, "
        "see bench/bench_train_step.py).",
    )
    log_every: int = setting(
        20, flag=True, check=AT_LEAST_ONE, at_least=1, help="Steps between progress-bar updates ({default})."
    )  # each one a host sync
    device: str = setting("auto", flag=True, choices=DEVICES, why="choose a GPU with CUDA_VISIBLE_DEVICES")
    test_every: int = setting(
        0,
        flag=True,
        check=NON_NEGATIVE,
        help="Also evaluate on the test split every N epochs (0: only at the end): the way to follow "
        "test accuracy (test/top1 % in TensorBoard, test_top1 in metrics.jsonl); report the last epoch.",
    )
    init_from: str | None = setting(
        None,
        flag=True,
        path="file",
        help="Start from a checkpoint's weights (fine-tuning): its width and recipe are kept unless a "
        "config file or flag says otherwise; tensors that do not fit (a new classifier) start fresh. "
        "Also published CTR-GCN (.pt) and pyskl CTR-GCN (.pth) files, and official HD-GCN .pt state "
        "dicts with --center-of-mass N as trained (the file does not record it).",
    )
    keep_checkpoints: int = setting(
        3,
        flag=True,
        check=bound(lambda v: v >= 0, ">= 0 (0 keeps every epoch)"),
        at_least=0,
        help="Epoch checkpoints kept: the last N checkpoints/epoch-NNN.pt (default {default}; 0 keeps every "
        "epoch), plus last.pt. Each holds the full training state: about 15 MB at full width (base "
        "channel 64, FAM and FRM: 6 MB of weights, the rest optimiser state).",
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def get(self, key: str) -> Any:
        """The value of a flat key (`lr`, `augment`, `window`, ...)."""
        section, name = FLAT_KEYS[key]
        return getattr(getattr(self, section) if section else self, name)

    def to_dict(self) -> dict[str, Any]:
        """Flat keys -> plain values (lists, not tuples: YAML and JSON safe)."""
        return {key: list(v) if isinstance(v := self.get(key), tuple) else v for key in FLAT_KEYS}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Flat keys (`to_dict`, config.yaml, a checkpoint's config) -> a TrainConfig; absent keys
        take their defaults. Unknown keys raise MMCLError."""
        values = _normalise_keys(values, "saved config")
        sections: dict[str | None, dict[str, Any]] = {}
        for key, value in values.items():
            section, name = FLAT_KEYS[key]
            sections.setdefault(section, {})[name] = value
        nested = {s: SECTIONS[s](**sections[s]) for s in SECTIONS if s in sections}
        return cls(**nested, **sections.get(None, {}))

    def replace(self, **values: Any) -> "TrainConfig":
        """This config with some flat keys changed."""
        return TrainConfig.from_dict({**self.to_dict(), **values})

    def with_input(self, layout: str | None, persons: int | None) -> "TrainConfig":
        """This config with the network's input layout and persons resolved."""
        return self.replace(layout=layout, persons=persons)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ArchitectureConfig,
    "loss": MMCLLossConfig,
    "augment": AugmentConfig,
    "optim": OptimConfig,
}

# flat key -> its Setting (section, field, type, metadata): the keys of flags, config files, recipes
# and config.yaml, in the order config.yaml lists them. A field's flat key is its name unless its
# `setting(key=...)` says otherwise (AugmentConfig.kind is `augment`).
SETTINGS = flat_settings(TrainConfig, SECTIONS)
# flat key -> (section, field); None: TrainConfig's own field
FLAT_KEYS: dict[str, tuple[str | None, str]] = {k: (s.section, s.field.name) for k, s in SETTINGS.items()}


# --------------------------------------------------------------------------- recipes

# What every recipe decides (a recipe that does not list one keeps the default, as `mmcl` does all),
# so the settings line says "recipe <name>" for each of them.
# (`setting(recipe=True)`)
RECIPE_KEYS = tuple(k for k, s in SETTINGS.items() if s.spec.recipe)


def describe_recipe(name: str) -> str:
    """`demo: 4 epochs, batch 8, lr 0.1, ...` for --help (the NTU values; dataset variants in the README)."""
    v = recipe_values(name, "")
    decay = (
        f"cosine per step to {v['min_lr']:g}"
        if v["schedule"] == "cosine"
        else "x0.1 at " + ",".join(str(s) for s in v["steps"])
    )
    repeat = f" (set repeated x{v['repeat']})" if v["repeat"] > 1 else ""
    return (
        f"{name}: {v['epochs']} epochs{repeat}, batch {v['batch_size']}, lr {v['lr']:g}, "
        f"wd {v['weight_decay']:g}, warm-up {v['warmup']}, {decay}, window {v['window']}, "
        + (f"test {v['test_clips']} clips, " if v["test_clips"] > 1 else "")
        + f"width {v['base_channel'] or 'of the backbone'}"
    )


def recipe_values(name: str, dataset: str) -> dict[str, Any]:
    if name not in RECIPES:
        raise MMCLError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    defaults = TrainConfig().to_dict()
    return {
        **{k: defaults[k] for k in RECIPE_KEYS},
        **RECIPES[name],
        **DATASET_VARIANTS.get((name, dataset), {}),
        "recipe": name,
    }


# --------------------------------------------------------------------------- files


def _normalise_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Flat keys with `-` read as `_`; a section given as a mapping (`optim: {lr: 0.05}`) is
    flattened into its keys."""
    out: dict[str, Any] = {}
    for k, v in values.items():
        k = str(k).replace("-", "_")
        if k in SECTIONS and isinstance(v, dict):
            inner = {str(n).replace("-", "_"): x for n, x in v.items()}
            keys = {s.field.name: key for key, s in SETTINGS.items() if s.section == k}
            unknown = sorted(set(inner) - set(keys))
            if unknown:
                raise MMCLError(
                    f"{source}: unknown setting(s) {', '.join(f'{k}.{n}' for n in unknown)}; "
                    f"known in {k}: {', '.join(sorted(keys))}"
                )
            out |= {keys[n]: x for n, x in inner.items()}
        else:
            out[k] = v
    unknown = sorted(set(out) - set(FLAT_KEYS))
    if unknown:
        raise MMCLError(f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(FLAT_KEYS))}")

    def name(key: str) -> str:  # as the user wrote it
        return f"--{key.replace('_', '-')}" if source == COMMAND_LINE else key

    return {k: SETTINGS[k].check(v, source, name(k)) for k, v in out.items()}


COMMAND_LINE = "command line"


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """Settings from a YAML (.yaml/.yml, also our saved config.yaml) or TOML (.toml) file."""
    if path is None:
        return {}
    path = Path(path)
    try:
        text = read_text(path, "config file")
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


def resolve_config(
    dataset: str, file_values: dict[str, Any], flags: dict[str, Any], base: dict[str, Any] | None = None
) -> TrainConfig:
    """Combine the layers for `dataset`. `flags` holds only the flags the user gave.

    `base` replaces the recipe layer (a resumed run's saved config).
    """
    return resolve_with_sources(dataset, file_values, flags, base=base).config


@dataclass(frozen=True)
class Resolved:
    """A resolved config and, per flat key, where its value came from: "default", "recipe <name>",
    "--init-from", "config file <path>", "flag", "saved config" (--resume); `recipe_fit` adds "fitted"."""

    config: TrainConfig
    sources: dict[str, str]

    def with_changes(self, values: dict[str, Any], source: str) -> "Resolved":
        return Resolved(self.config.replace(**values), {**self.sources, **dict.fromkeys(values, source)})


def resolve_with_sources(
    dataset: str,
    file_values: dict[str, Any],
    flags: dict[str, Any],
    base: dict[str, Any] | None = None,
    inherited: dict[str, Any] | None = None,
    file_name: str | None = None,
) -> Resolved:
    """`resolve_config` that also says where each value came from. `inherited`: the architecture
    (and recipe name) an --init-from checkpoint was trained with, between the recipe and the file."""
    flags = _normalise_keys({k: v for k, v in flags.items() if v is not None}, COMMAND_LINE)
    inherited = dict(inherited or {})
    inherited_recipe = inherited.pop("recipe", None)
    user = {**file_values, **flags}
    recipe_source = "default"
    if base is None:
        use_fam, use_frm = user.get("use_fam", True), user.get("use_frm", True)
        name = user.get("recipe") or inherited_recipe or default_recipe(dataset, use_fam, use_frm)
        if "recipe" not in user and inherited_recipe:
            recipe_source = "--init-from"
        base, base_source = recipe_values(name, dataset), f"recipe {name}"
    else:
        base_source = "saved config"
    layers = [
        (_normalise_keys(base, "saved config"), base_source),
        (inherited, "--init-from"),
        (file_values, f"config file {file_name}" if file_name else "config file"),
        (flags, "flag"),
    ]
    values: dict[str, Any] = {}
    sources = dict.fromkeys(FLAT_KEYS, "default")
    for layer, source in layers:
        values |= layer
        sources |= dict.fromkeys(layer, source)
    if base_source != "saved config" and "recipe" not in user:
        sources["recipe"] = recipe_source  # the recipe's own layer names itself; say who chose it
    return Resolved(TrainConfig.from_dict({**values, "dataset": dataset}), sources | {"dataset": "cache"})


def finalize_config(cfg: TrainConfig, dataset_dir: Path, protocols: list[str]) -> TrainConfig:
    """Fill in what depends on the cache (its dataset directory and protocol) and on the
    machine (the precision `auto` means here, so that config.yaml and checkpoints say what ran)."""
    from .device import resolve_mixed_precision  # torch: only when a run is set up

    data = cfg.data
    protocol = data.protocol or protocols[0]
    if protocol not in protocols:
        raise MMCLError(
            f"dataset {data.dataset!r} ({dataset_dir}) has no protocol {protocol!r}; "
            f"choose one of: {', '.join(protocols)}"
        )
    features = data.features
    if cfg.model.use_fam or cfg.model.use_frm:  # fail before anything is written when the features are missing
        features = resolve_features(dataset_dir, data.features).stem
    # work_dir stays None unless given: train.train names a new folder per run (run_dirs)
    return cfg.replace(
        cache=str(Path(dataset_dir).resolve()),
        protocol=protocol,
        features=features,
        mixed_precision=resolve_mixed_precision(cfg.mixed_precision, cfg.device),
    )


# Settings a resumed run cannot change (`setting(fixed_on_resume=True)`): they shape the model or
# the data it was trained on.
FIXED_ON_RESUME = tuple(k for k, s in SETTINGS.items() if s.spec.fixed_on_resume)


def check_resume_compatible(cfg: TrainConfig, saved: TrainConfig, checkpoint: Path) -> None:
    changed = [k for k in FIXED_ON_RESUME if saved.get(k) != cfg.get(k)]
    if changed:
        detail = ", ".join(f"{k} {saved.get(k)!r} -> {cfg.get(k)!r}" for k in changed)
        raise MMCLError(
            f"--resume: {checkpoint} was trained with other settings ({detail}); drop "
            f"those flags or start a new work dir"
        )


def check_resume_epochs(cfg: TrainConfig, done: int, checkpoint: Path) -> None:
    """--resume with fewer --epochs than the checkpoint has trained would report (and rewrite
    config.yaml with) an epoch count the weights are past: refused before anything is written."""
    if cfg.optim.epochs < done:
        raise MMCLError(
            f"--resume: {checkpoint} has trained {done} epochs, more than --epochs "
            f"{cfg.optim.epochs}; pass --epochs {done} or more (or start a new work dir)"
        )
