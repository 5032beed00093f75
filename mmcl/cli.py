"""The `mmcl` command group. Subcommands live in their stage and are imported only when called,
so `mmcl train` never imports stage 1 (and `mmcl --help` imports neither)."""

from __future__ import annotations

import importlib

import click

from shared.command import run

SUBCOMMANDS = {
    "extract": ("stage1_extract.cli", "extract", "Stage 1: skeleton cache, RGB and MLLM features."),
    "demo-data": ("stage1_extract.cli", "demo_data", "Generate the demo dataset (NTU, UTD, SYSU layouts)."),
    "demo-models": ("stage1_extract.cli", "demo_models", "Build the offline demo models."),
    "export-pyskl": ("stage1_extract.cli", "export_pyskl", "Write a cache's skeletons as a pyskl pickle."),
    "train": ("stage2_train.cli", "train", "Stage 2: train CTR-GCN (+ FAM + FRM) from a cache."),
    "test": ("stage2_train.cli", "test", "Evaluate a trained checkpoint."),
    "ensemble": ("stage2_train.cli", "ensemble", "Fuse score files of several streams."),
    "export": ("stage2_train.cli", "export", "Export the skeleton-only network (TorchScript, ONNX)."),
    "predict": ("stage2_train.cli", "predict", "Top-5 classes for a raw skeleton file or cached sample."),
    "zeroshot": ("stage2_train.cli", "zeroshot", "Zero-shot evaluation on UTD-MHAD / SYSU."),
    "ablate": ("stage2_train.ablation.ablate", "ablate", "Baseline vs +FAM vs +FRM vs MMCL over seeds: tables, chart."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(SUBCOMMANDS)

    def get_command(self, ctx, name):
        if name not in SUBCOMMANDS:
            return None
        module, attr, _ = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):  # help text without importing every stage
        rows = [(name, short) for name, (_, _, short) in SUBCOMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup)
@click.version_option(package_name="mmcl-action")
def mmcl():
    """MMCL: skeleton action recognition with multi-modality co-learning."""


def main() -> None:
    run(mmcl)
