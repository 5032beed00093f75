"""Checkpoints and export cards of the first format still load; anything else fails clearly.

`data/checkpoint-v1.pt` and `data/model-v1.json` were written by this project before the model
spec existed (format mmcl-checkpoint-1 / mmcl-export-1): one epoch of MMCL on `write_tiny_cache`
(seed 0) with base_channel 8 and 12-frame windows; `checkpoint-v1.logits.json` holds what
`mmcl predict` computed from that checkpoint for cached sample 0.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from stage2_run import invoke

from shared.errors import MMCLError
from shared.registry import DEMO
from stage2_train.training.checkpoint import CHECKPOINT_FORMAT, Checkpoint, CheckpointError, checksum, load_checkpoint
from stage2_train.deploy.export import EXPORT_FORMAT, ModelCard
from stage2_train.deploy.predict import Predictor
from stage2_train.deploy.sequence import read_cached

DATA = Path(__file__).parent / "data"
V1 = DATA / "checkpoint-v1.pt"


@pytest.fixture(scope="module")
def cache(feature_cache) -> Path:
    """The shared tiny cache with its feature set: `write_tiny_cache`'s, which V1 was trained on."""
    return feature_cache


def test_first_format_checkpoint_loads_as_a_typed_spec():
    ckpt = load_checkpoint(V1)
    spec = ckpt.spec
    assert (spec.dataset, spec.protocol, spec.class_names) == ("demo", "xsub", DEMO.class_names)
    assert spec.ntu_ids == [c.ntu_id for c in DEMO.classes]
    assert (
        spec.input.layout,
        spec.input.num_person,
        spec.input.num_point,
        spec.input.window,
        spec.input.stream,
        spec.input.origin_joint,
    ) == ("ntu25", 2, 25, 12, "joint", 1)
    assert spec.model.backbone.base_channel == 8 and spec.model.use_fam and spec.model.use_frm
    assert spec.features.name == "tiny" and spec.features.questions and spec.features.text_dim == 10
    assert ckpt.epoch == 1 and ckpt.train_config().model.base_channel == 8
    assert ckpt.build_model().backbone.config == spec.model.backbone


def test_first_format_checkpoint_predicts_as_it_did(cache):
    expected = json.loads((DATA / "checkpoint-v1.logits.json").read_text())
    seq = read_cached(cache, str(expected["sample"]))
    got = Predictor.from_checkpoint(V1).logits(seq.joints, seq.layout)
    np.testing.assert_allclose(got, expected["logits"], rtol=0, atol=1e-5)


def test_first_format_checkpoint_is_rewritten_in_the_current_format(tmp_path):
    old = load_checkpoint(V1)
    old.save(tmp_path / "v2.pt")
    assert torch.load(tmp_path / "v2.pt", weights_only=True)["format"] == CHECKPOINT_FORMAT
    new = load_checkpoint(tmp_path / "v2.pt")
    assert new.spec == old.spec and new.config == old.config and new.epoch == old.epoch
    for k, v in old.model.items():
        torch.testing.assert_close(new.model[k], v, rtol=0, atol=0)


def test_first_format_checkpoint_tests_and_resumes(cache, tmp_path):
    invoke("test", "--checkpoint", V1, "--cache", cache, "--out", tmp_path / "eval", "--device", "cpu")
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["num_samples"] == 9
    work = tmp_path / "run"
    work.mkdir()
    shutil.copy(V1, work / "last.pt")
    config = tmp_path / "small.yaml"
    config.write_text("base_channel: 8\n")
    result = invoke(
        "train",
        "--resume",
        "--cache",
        cache,
        "--work-dir",
        work,
        "--epochs",
        2,
        "--config",
        config,
        "--recipe",
        "demo",
        "--batch-size",
        9,
        "--device",
        "cpu",
        "--workers",
        0,
    )
    assert "resuming" in result.output and "after epoch 1" in result.output
    resumed = load_checkpoint(work / "last.pt")
    assert resumed.epoch == 2 and resumed.spec.model == load_checkpoint(V1).spec.model


def test_files_that_are_not_checkpoints_fail_naming_the_file(tmp_path):
    cases = {
        "text.pt": None,
        "other.pt": {"format": "someone-else"},
        "bare.pt": {"format": CHECKPOINT_FORMAT, "epoch": 1},
        "spec.pt": {"format": CHECKPOINT_FORMAT, "spec": {"format": "junk"}, "epoch": 1, "config": {}, "model": {}},
    }
    cases["spec.pt"]["checksum"] = checksum(cases["spec.pt"])
    for name, payload in cases.items():
        path = tmp_path / name
        if payload is None:
            path.write_text("not a checkpoint")
        else:
            torch.save(payload, path)
        with pytest.raises(CheckpointError, match=name):
            Checkpoint.load(path)
    with pytest.raises(CheckpointError, match="missing spec, config, model, checksum"):
        Checkpoint.load(tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="unreadable model description"):
        Checkpoint.load(tmp_path / "spec.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        Checkpoint.load(tmp_path / "absent.pt")


def test_first_format_export_card_loads():
    card = ModelCard.from_json((DATA / "model-v1.json").read_text(), "model-v1.json")
    assert card.format == EXPORT_FORMAT and card.spec.model is None  # the first cards lacked it
    assert card.input_shape == (3, 12, 25, 2) and card.class_names == DEMO.class_names
    assert card.spec.input == load_checkpoint(V1).spec.input
    again = ModelCard.from_json(card.to_json(), "rewritten")
    assert again == card
    with pytest.raises(MMCLError, match="junk.json: not an mmcl export card"):
        ModelCard.from_json('{"format": "junk"}', "junk.json")


def test_a_flipped_bit_in_the_weights_is_refused(tmp_path):
    """Each of a few single-bit flips inside the stored tensors (found through the zip's entries)
    is refused with CheckpointError, where the file without the flip loads."""
    import zipfile

    load_checkpoint(V1).save(tmp_path / "good.pt")
    load_checkpoint(tmp_path / "good.pt")  # the checksum written is the one recomputed
    raw = (tmp_path / "good.pt").read_bytes()
    with zipfile.ZipFile(tmp_path / "good.pt") as z:
        entries = sorted((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: -i.file_size)[:3]
    for i, entry in enumerate(entries):
        # a stored (uncompressed) entry's data follows its 30-byte local header, name and extra field
        h = entry.header_offset
        name_len, extra_len = (
            int.from_bytes(raw[h + 26 : h + 28], "little"),
            int.from_bytes(raw[h + 28 : h + 30], "little"),
        )
        start = h + 30 + name_len + extra_len
        flipped = bytearray(raw)
        flipped[start + entry.file_size // 2] ^= 0x10
        path = tmp_path / f"flipped-{i}.pt"
        path.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointError, match=f"flipped-{i}.pt: corrupted checkpoint"):
            load_checkpoint(path)
