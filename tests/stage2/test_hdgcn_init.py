"""`--init-from` an official HD-GCN `.pt` state dict (issue #24 item 3): read in the official layout
(as Jho-Yonsei/HD-GCN's main.py saves it), the network its shapes describe, and the centre of mass,
which the file does not record, said by `--center-of-mass`; refused in one line otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from backbone_reference import reference_weights
from stage2_cache import write_tiny_cache
from stage2_run import COMMON

from shared.errors import MMCLError
from stage2_train import cli
from stage2_train.models.mmcl_model import MMCLModel
from stage2_train.models.model_config import MMCLModelConfig
from stage2_train.training.published_weights import HDGCN, PublishedWeights, load_weights
from stage2_train.training.weight_transfer import load_matching_weights

DATA = Path(__file__).parent / "data" / "backbones"


@pytest.fixture(scope="module")
def ref() -> dict:
    return torch.load(DATA / "hdgcn.pt", weights_only=True)


@pytest.fixture(scope="module")
def official(ref, tmp_path_factory) -> Path:
    """The official model's state dict (5 classes, width 64, NTU-25), saved from DataParallel."""
    state = reference_weights([(k, tuple(s)) for k, s in ref["shapes"]])
    path = tmp_path_factory.mktemp("hdgcn") / "ntu120_xsub_joint_com21.pt"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    return path


def test_the_file_reads_as_the_network_it_describes_and_forwards_as_the_official(official, ref):
    weights = load_weights(official)
    assert isinstance(weights, PublishedWeights) and weights.source == HDGCN
    b = weights.backbone
    assert (b.kind, b.num_class, b.base_channel, b.graph, b.num_person, b.center_of_mass) == (
        "hdgcn",
        5,
        64,
        "ntu25",
        2,
        None,
    )
    assert "centre of mass as --center-of-mass says" in weights.notes()[0]
    model = MMCLModel(MMCLModelConfig(type(b)(**{**_fields(b), **ref["config"]}))).double().eval()
    transfer = load_matching_weights(model, weights.model)
    assert not [k for k in transfer.fresh if not k.endswith("num_batches_tracked")] and not transfer.unused
    with torch.no_grad():
        logits, _ = model.backbone.forward_features(ref["x"])
    torch.testing.assert_close(logits, ref["logits"], rtol=0, atol=1e-9)


def _fields(config) -> dict:
    return {
        k: getattr(config, k) for k in ("num_class", "num_point", "num_person", "graph", "in_channels", "base_channel")
    }


def resolve(cache: Path, official: Path, *flags: str):
    """`mmcl train`'s resolution of the run (nothing trained): the settings it would train with."""
    seen = {}

    def capture(cfg, ckpt):
        seen["cfg"] = cfg

    import stage2_train.training.train as training

    original, training.train = training.train, capture
    try:
        cli.train.main(
            [
                "--cache",
                str(cache),
                "--work-dir",
                str(cache.parent / "run"),
                *COMMON,
                "--init-from",
                str(official),
                "--no-fam",
                "--no-frm",
                "--window",
                "12",
                *flags,
            ],
            standalone_mode=False,
        )
    finally:
        training.train = original
    return seen["cfg"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return write_tiny_cache(tmp_path_factory.mktemp("demo") / "cache", features=False)


def test_init_from_with_the_centre_of_mass_takes_the_network_of_the_file(cache, official):
    cfg = resolve(cache, official, "--backbone", "hdgcn", "--center-of-mass", "2")
    assert (cfg.model.backbone, cfg.model.center_of_mass, cfg.model.base_channel) == ("hdgcn", 2, 64)
    # the backbone comes from the file when not given
    assert resolve(cache, official, "--center-of-mass", "21").model.backbone == "hdgcn"


@pytest.mark.parametrize(
    "flags,message",
    [
        ((), "does not record the centre of mass its hierarchy grew from"),
        (("--backbone", "ctrgcn"), "--backbone ctrgcn cannot take it"),
        (("--center-of-mass", "21", "--base-channel", "32"), "of shapes this network does not have"),
        (("--center-of-mass", "21", "--persons", "3"), "of shapes this network does not have"),
    ],
)
def test_what_cannot_take_the_file_is_refused_in_one_line(cache, official, flags, message):
    with pytest.raises(MMCLError, match=message) as err:
        resolve(cache, official, *flags)
    assert "\n" not in str(err.value)


def test_mmcl_test_refuses_it_naming_the_way(cache, official):
    with pytest.raises(MMCLError, match="--center-of-mass N --epochs 0"):
        load_weights(official).as_checkpoint(cache, None)
