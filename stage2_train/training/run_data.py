"""What a training run reads from its cache: the splits, the feature set, the loaders and the input
pipelines (`Data`), built from the resolved TrainConfig, and the lines that say so at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError
from shared.layouts import Layout

from ..data.clip_sampling import ClipsInput, evaluation_input
from ..data.dataset import JointSource, SkeletonDataset, Splits, default_workers, make_loader, make_splits
from ..data.device_batches import DeviceBatches
from ..data.features import FeatureArrays, load_features
from ..data.input_layout import input_layout
from ..data.transforms import InputPipeline
from .config import TrainConfig


@dataclass
class Data:
    """What the loop needs from the cache: loaders, input pipelines, classes, provenance."""

    skeletons: SkeletonCache
    class_names: list[str]
    layout: Layout  # the network's input layout (cfg.data.layout: the cache's, or mapped to)
    num_person: int  # the network's persons (cfg.data.persons: the cache's, or more)
    splits: Splits
    features: FeatureArrays | None
    train_loader: torch.utils.data.DataLoader | DeviceBatches
    val_loader: torch.utils.data.DataLoader | None
    test_loader: torch.utils.data.DataLoader
    train_input: InputPipeline
    test_input: InputPipeline | ClipsInput  # every evaluation's (val and test): cfg.augment.test_clips windows


def build_data(cfg: TrainConfig, acc: Accelerator) -> Data:
    dataset_dir = Path(cfg.data.cache)
    skeletons = SkeletonCache(dataset_dir)
    spec = skeletons.spec
    splits = make_splits(skeletons, cfg.data.protocol, cfg.data.val_split, cfg.data.val_seed)
    features = load_features(dataset_dir, cfg.data.features, skeletons, cfg.model.use_fam, cfg.model.use_frm)
    view = input_layout(skeletons, cfg.data.layout, cfg.data.persons)
    joints = view.joints(JointSource(skeletons, cfg.data.in_memory))
    workers = default_workers(joints) if cfg.data.workers is None else cfg.data.workers
    labels = skeletons.labels

    def dataset(rows, repeat=1):
        return SkeletonDataset(joints, rows, labels, features, repeat)

    layout = view.layout
    train_set = dataset(splits.train, cfg.data.repeat)
    data = Data(
        skeletons,
        spec.class_names,
        layout,
        view.num_person,
        splits,
        features,
        train_loader=(
            DeviceBatches(train_set, cfg.optim.batch_size, cfg.seed, acc.device, acc.process_index, acc.num_processes)
            if cfg.data.on_device
            else make_loader(train_set, cfg.optim.batch_size, True, workers, cfg.seed)
        ),
        val_loader=(
            make_loader(dataset(splits.val), cfg.optim.eval_batch_size, False, workers) if len(splits.val) else None
        ),
        test_loader=make_loader(dataset(splits.test), cfg.optim.eval_batch_size, False, workers),
        train_input=InputPipeline(cfg.augment, True, cfg.data.stream, layout),
        test_input=evaluation_input(cfg.augment, cfg.data.stream, layout),
    )
    if len(splits.test) == 0:
        raise MMCLError(f"{skeletons.path}: protocol {cfg.data.protocol!r} has no test samples")
    return data


def report_data(cfg: TrainConfig, data: Data, acc: Accelerator) -> None:
    s = data.splits
    acc.print(
        f"{data.skeletons.dataset} {cfg.data.protocol} {cfg.data.stream}: {len(s.train)} train"
        + (f", {len(s.val)} validation" if len(s.val) else "")
        + f", {len(s.test)} test samples; "
        f"{len(data.class_names)} classes; work dir {cfg.work_dir}; {acc.device.type}, "
        + ("float32" if cfg.mixed_precision == "no" else f"{cfg.mixed_precision} autocast")
        + (f"; {acc.num_processes} processes" if acc.num_processes > 1 else "")
    )
    f = data.features
    if f is None:
        acc.print("features: none (FAM and FRM off): skeleton losses only")
        return
    for valid, module in ((f.rgb_valid, "FAM"), (f.text_valid, "FRM")):
        if valid is not None:
            missing = int((~valid[s.train]).sum())
            acc.print(
                f"features {f.name}: {missing} of {len(s.train)} training samples lack {module} "
                f"input and train with the skeleton losses only"
            )
