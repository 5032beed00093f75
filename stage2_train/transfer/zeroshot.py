"""Zero-shot evaluation: a trained model, frozen, on another dataset's skeletons (UTD-MHAD, SYSU).

The paper's generalisation rows: an NTU RGB+D 120 model scores UTD-MHAD clips without any
training, through a class mapping, with or without FRM refining the scores from the clips' own
MLLM features ("w/ BLIP Refine"). Read top to bottom:

1. the class mapping (`class_mapping`): each target class carries an NTU action id (None =
   unmapped), which names the checkpoint's class by the checkpoint's own NTU ids;
2. the input: target skeletons mapped to the checkpoint's layout (Kinect v1 -> NTU-25), padded
   with absent persons to its num_person, then the checkpoint's own test-time pipeline
   (translation to the centre joint, centre crop and resize, stream);
3. the scores S_M of the backbone over ALL the checkpoint's classes and, with `--refine`, S_R =
   FRM(S_M, text features) after checking the target features were made like the training ones;
4. top-1/top-5 over the mapped samples, per target class, saved as JSON and CSV, plus each score
   set's full report (`zeroshot_report`; `evaluate.write_report`: confusion, scores.pkl for `mmcl ensemble`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from shared.cache_schema import SkeletonCache, resolve_dataset_dir
from shared.errors import MMCLError
from shared.layouts import describe_layout_maps
from shared.progress import progress_bar
from shared.dataset_spec import DatasetSpec

from ..training.checkpoint import Checkpoint, load_checkpoint
from .class_mapping import UNMAPPED, class_mapping
from .zeroshot_report import per_class, print_summary, summarize_run, write_outputs
from ..data.dataset import JointSource, SkeletonDataset, make_loader
from ..training.device import resolve_device
from ..evaluation.evaluate import SplitScores
from ..data.features import FeatureArrays, load_features
from ..data.input_layout import InputLayout, NoLayoutMap, TooManyPersons
from ..models.mmcl_model import MMCLModel
from ..models.model_spec import InputSpec, ModelSpec, plain_attrs
from ..training.run_report import evaluation_dir
from ..data.transforms import InputPipeline

# Feature attributes allowed to differ between the training and the target feature sets: which
# dataset, where a model was loaded from (the revision identifies it), the MLLM backend (both
# compute the same P(yes), CONTRACT.md), library versions, and the RGB side, which FRM never reads.
PER_DATASET_ATTRS = frozenset(
    {
        "dataset",
        "params",
        "library_versions",
        "created",
        "mllm_spec",
        "rgb_encoder_spec",
        "text_encoder_spec",
        "mllm_backend",
    }
)


@dataclass(frozen=True)
class ZeroShotConfig:
    checkpoint: Path  # a checkpoint file, or a work dir holding last.pt
    cache: Path  # the target's cache root or dataset directory
    features: str | None = None  # target feature set for --refine; None: the only one
    refine: bool = False
    out: Path | None = None  # None: <work dir>/zeroshot-<target dataset>-<time>
    protocol: str | None = None  # None: every sample; else that protocol's test split
    batch_size: int | None = None  # None: the checkpoint's test batch size
    device: str = "auto"
    progress: bool = True
    force: bool = False  # score the checkpoint's own training samples all the same


# --------------------------------------------------------------------------- checkpoint


def checkpoint_path(path: Path) -> Path:
    """`--checkpoint` names a file, or a training work dir whose last.pt is meant."""
    path = Path(path)
    return path / "last.pt" if path.is_dir() else path


# --------------------------------------------------------------------------- input


def target_input(target: SkeletonCache, model: InputSpec, path: Path) -> InputLayout:
    """How the network `path` takes `model` input reads the target cache: its joints mapped to the
    network's layout, padded with absent (zero) persons (as fine-tuning on another layout)."""
    try:
        return model.mapping_from(target.layout, target.num_person)
    except TooManyPersons:
        raise MMCLError(
            f"{target.path} holds up to {target.num_person} persons per sample, the model "
            f"{path} takes {model.num_person}"
        ) from None
    except NoLayoutMap:
        raise MMCLError(
            f"{path} was trained on the {model.layout} skeleton layout ({model.num_point} joints) "
            f"and {target.path} holds {target.layout} skeletons ({target.num_joints} joints): no "
            f"mapping between them (known: {describe_layout_maps()})"
        ) from None


# --------------------------------------------------------------------------- refinement features


def frm_identity(attrs: dict) -> dict[str, Any]:
    """What makes FRM inputs comparable: models (by revision where known), prompts, images."""
    out = {k: v for k, v in plain_attrs(attrs).items() if k not in PER_DATASET_ATTRS and not k.startswith("rgb_")}
    for model in ("mllm", "text_encoder"):
        revision = out.pop(f"{model}_revision", "")
        if revision:  # a local directory's id is its path; its revision is copy-stable
            out[f"{model}_id"] = revision
    return out


def check_refine_features(model: ModelSpec, path: Path, target: FeatureArrays) -> None:
    """Refuse target features that FRM would misread: other models, prompts, questions or width."""
    trained = model.features
    if trained is None or not model.model.use_frm:
        raise MMCLError(
            f"--refine: {path} was trained without FRM, so it has no refinement head; evaluate without --refine"
        )
    problems = []
    if trained.questions != list(target.questions):
        problems.append(f"questions {target.questions!r} here, {trained.questions!r} in training")
    if target.text_dim != trained.text_dim:
        problems.append(f"text feature width {target.text_dim} here, {trained.text_dim} in training")
    mine, theirs = frm_identity(target.attrs), frm_identity(trained.attrs)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            problems.append(f"{key}: {mine.get(key)!r} here, {theirs.get(key)!r} in training")
    if problems:
        raise MMCLError(
            f"--refine: {target.path} was not made with the models and prompts of the training features "
            f"({trained.name}): " + "; ".join(problems) + ". Extract the target features with the "
            "same --mllm, --text-encoder and --prompts, or evaluate without --refine"
        )


# --------------------------------------------------------------------------- scoring


@torch.no_grad()
def score(
    model: MMCLModel,
    loader,
    pipeline: InputPipeline,
    device: torch.device,
    names: list[str],
    refine: bool,
    progress: bool,
) -> tuple[SplitScores, SplitScores | None]:
    """S_M for every sample and, with `refine`, S_R (S_M kept where a sample has no valid text)."""
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("logits", "refined", "label", "index")}
    for batch in progress_bar(loader, desc="zero-shot", leave=False, disable=not progress):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(pipeline(batch), text=batch["text"] if refine else None)
        logits = out.logits.float()
        if refine:
            valid = batch["text_valid"][:, None]
            parts["refined"].append(torch.where(valid, out.refined.float(), logits).cpu())
        parts["logits"].append(logits.cpu())
        parts["label"].append(batch["label"].cpu())
        parts["index"].append(batch["index"].cpu())
    cat = {k: torch.cat(v).numpy() for k, v in parts.items() if v}
    rows = cat["index"].astype(np.int64)

    def scores(key: str) -> SplitScores:
        return SplitScores(cat[key].astype(np.float32), cat["label"].astype(np.int64), rows, [names[r] for r in rows])

    return scores("logits"), scores("refined") if refine else None


# --------------------------------------------------------------------------- the run


def run_zeroshot(cfg: ZeroShotConfig) -> dict[str, Any]:
    """Evaluate; write `zeroshot.json`, `per_class.csv` and one report per score set; return the summary."""
    path = checkpoint_path(cfg.checkpoint)
    ckpt = load_checkpoint(path)
    dataset_dir = resolve_dataset_dir(cfg.cache)
    target = SkeletonCache(dataset_dir)
    spec = target.spec

    view = target_input(target, ckpt.spec.input, path)
    rows = split_rows(target, spec, cfg.protocol)
    warnings = check_not_trained_on(ckpt, path, target, rows, cfg.force)
    mapping = class_mapping(spec, ckpt.spec, path, needed=set(target.labels[rows].tolist()))
    mapped = mapping.labels(target.labels[rows]) != UNMAPPED
    if not mapped.any():
        raise MMCLError(
            f"{target.path}: none of the {len(rows)} samples belongs to a class with a "
            f"counterpart in {path} ({ckpt.spec.dataset})"
        )
    skipped = np.bincount(target.labels[rows[~mapped]], minlength=spec.num_classes)
    rows = rows[mapped]

    features = None
    if cfg.refine:
        features = load_features(dataset_dir, cfg.features, target, need_rgb=False, need_text=True)
        check_refine_features(ckpt.spec, path, features)

    device = resolve_device(cfg.device)
    model = ckpt.build_model().to(device)
    labels = mapping.labels(target.labels)  # checkpoint class per cache row; only mapped rows are read
    dataset = SkeletonDataset(view.joints(JointSource(target)), rows, labels, features)
    batch_size = cfg.batch_size or ckpt.train_config().optim.eval_batch_size
    loader = make_loader(dataset, batch_size, train=False, workers=0)
    plain, refined = score(model, loader, ckpt.spec.input.pipeline(), device, target.names, cfg.refine, cfg.progress)
    sets = {"skeleton": plain} | ({"refined": refined} if refined is not None else {})

    out = Path(cfg.out) if cfg.out else evaluation_dir(work_dir_of(path), f"zeroshot-{spec.name}")
    summary = summarize_run(
        cfg.protocol,
        ckpt,
        path,
        target,
        spec,
        mapping,
        sets,
        features,
        per_class(mapping, target.labels[plain.rows], sets, skipped),
    )
    summary["warnings"] = warnings
    write_outputs(out, summary, sets, mapping)
    print_summary(summary, out)
    return summary


def split_rows(target: SkeletonCache, spec: DatasetSpec, protocol: str | None) -> np.ndarray:
    """Every sample (zero-shot: the model saw none), or one protocol's test split (to compare
    with a model fine-tuned on that protocol's training split)."""
    if protocol is None:
        return np.arange(len(target))
    rows = target.split_indices(spec.protocol(protocol).name, train=False)
    if len(rows) == 0:
        raise MMCLError(
            f"{target.path}: the {protocol} test split holds no samples; drop --protocol to score every sample"
        )
    return rows


def check_not_trained_on(
    ckpt: Checkpoint, path: Path, target: SkeletonCache, rows: np.ndarray, force: bool
) -> list[str]:
    """Refuse (unless `force`: warn) to score samples the checkpoint trained on: its own cache (same
    dataset and sample list) in its protocol's training split. Returns the warnings given."""
    if target.dataset != ckpt.spec.dataset:
        return []
    if ckpt.skeletons_names_hash is None:  # first-format checkpoints may not record their samples
        message = (
            f"warning: {path} was trained on {target.dataset} and does not record which samples; "
            f"{target.path} may be its own training data"
        )
    elif ckpt.skeletons_names_hash != target.names_hash:
        return []
    else:
        protocol = ckpt.spec.protocol or ckpt.train_config().data.protocol
        trained = (
            target.split_indices(target.spec.protocol(protocol).name, train=True)
            if protocol
            else np.arange(len(target))
        )
        seen = np.intersect1d(rows, trained)
        if len(seen) == 0:  # e.g. --protocol of the checkpoint: its test split
            return []
        message = (
            f"{target.path} is the cache {path} was trained on: {len(seen)} of the {len(rows)} samples "
            f"to score are in its {protocol} training split, so the figures would measure what it "
            f"memorised, not how it transfers"
        )
        if not force:
            raise MMCLError(
                f"{message}. Score its test split (--protocol {protocol}) or another dataset, or pass --force"
            )
        message = f"warning (--force): {message}"
    click.echo(message, err=True)
    return [message]


def work_dir_of(path: Path) -> Path:
    return path.parent.parent if path.parent.name == "checkpoints" else path.parent


# --------------------------------------------------------------------------- command


@click.command()
@click.option(
    "--checkpoint",
    "checkpoint",
    required=True,
    type=click.Path(exists=True),
    help="A training checkpoint, or its work dir (then its last.pt).",
)
@click.option(
    "--cache",
    required=True,
    type=click.Path(exists=True),
    help="The target's cache root or dataset directory, e.g. cache/utd-mhad.",
)
@click.option("--features", help="Target feature set for --refine (default: the only one).")
@click.option(
    "--refine", is_flag=True, help="Also refine the scores with the trained FRM and the target's text features."
)
@click.option(
    "--out", type=click.Path(), help="Output folder (default: a new <work dir>/zeroshot-<dataset>-<YYYYmmdd-HHMMSS>)."
)
@click.option("--protocol", help="Score only this protocol's test split (default: every sample).")
@click.option("--test-batch-size", type=int, help="Evaluation batch size (default: the checkpoint's).")
@click.option("--batch-size", "batch_size_alias", type=int, hidden=True)  # the former name, kept as an alias
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--force", is_flag=True, help="Score the checkpoint's own training samples all the same (refused otherwise)."
)
def zeroshot(
    checkpoint: str,
    cache: str,
    features: str | None,
    refine: bool,
    out: str | None,
    protocol: str | None,
    test_batch_size: int | None,
    batch_size_alias: int | None,
    device: str,
    force: bool,
) -> None:
    """Zero-shot evaluation of a trained model on UTD-MHAD or SYSU-3D-HOI through the class mapping."""
    run_zeroshot(
        ZeroShotConfig(
            Path(checkpoint),
            Path(cache),
            features,
            refine,
            Path(out) if out else None,
            protocol,
            test_batch_size or batch_size_alias,
            device,
            force=force,
        )
    )
