"""Every backbone through the product: `mmcl train --backbone X` with FAM and FRM on the tiny demo
cache (one epoch, base width 8), then test, export (no training-only layer), predict, zero-shot
(with --refine) and the pyskl pickle `mmcl export-pyskl` writes, and the checkpoint records the
backbone and builds it back. CTR-GCN runs through the same commands in test_train, test_export,
test_predict, test_zeroshot and tests/stage1/test_pyskl.py."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from stage2_cache import write_tiny_features
from stage2_run import ONE_EPOCH, invoke, train

from shared.cache_schema import FEATURES_DIR, FeatureFile
from stage1_extract.demo.dataset import generate_utd

from stage2_train.deploy.export import export_checkpoint
from stage2_train.deploy.predict import Predictor
from stage2_train.deploy.sequence import read_cached
from stage2_train.training.checkpoint import load_checkpoint

BACKBONES = ("hdgcn", "stgcnpp", "protogcn")
TINY = ("--base-channel", "8")  # a multiple of 8: ProtoGCN's 8 topologies split each width


@pytest.fixture(scope="module")
def cache(feature_cache) -> Path:
    """The shared tiny cache with its feature set."""
    return feature_cache


@pytest.fixture(scope="module", params=BACKBONES)
def run(request, cache, tmp_path_factory) -> tuple[str, Path]:
    kind = request.param
    work = train(cache, tmp_path_factory.mktemp(kind) / "run", "--backbone", kind, *TINY, *ONE_EPOCH)
    return kind, work


def test_the_run_records_and_restores_its_backbone(run):
    kind, work = run
    assert yaml.safe_load((work / "config.yaml").read_text())["backbone"] == kind
    ckpt = load_checkpoint(work / "last.pt")
    assert ckpt.spec.model.backbone.kind == kind and ckpt.spec.model.use_fam and ckpt.spec.model.use_frm
    model = ckpt.build_model()
    assert type(model.backbone).__name__ == {"hdgcn": "HDGCN", "stgcnpp": "STGCNPP", "protogcn": "ProtoGCN"}[kind]
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in ckpt.model.items()}
    metrics = [yaml.safe_load(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    trained = [m for m in metrics if "loss_backbone" in m]
    assert trained and (trained[-1]["loss_backbone"] > 0) == (kind == "protogcn")


def test_test_command_reproduces_the_final_evaluation(run, cache):
    _, work = run
    invoke("test", "--checkpoint", work / "last.pt", "--cache", cache, "--out", work / "retest", "--device", "cpu")
    again, trained = np.load(work / "retest" / "scores.npz"), np.load(work / "eval" / "scores.npz")
    assert list(again["names"]) == list(trained["names"])
    np.testing.assert_allclose(again["scores"], trained["scores"], atol=1e-5)


# HD-GCN's export (TorchScript and ONNX, each verified) takes 30-80 s on the shared 2-core machine.
@pytest.mark.parametrize("run", ["stgcnpp", "protogcn", pytest.param("hdgcn", marks=pytest.mark.slow)], indirect=True)
def test_export_holds_the_backbone_alone_and_predicts_as_training_evaluated(run, cache):
    kind, work = run
    export_checkpoint(work / "last.pt", work / "export")  # verifies TorchScript and ONNX against the model
    model = load_checkpoint(work / "last.pt").build_model()
    ts = torch.jit.load(str(work / "export" / "model.ts"))
    assert set(ts.state_dict()) == set(model.backbone.state_dict())
    assert not any(k.startswith(("fam.", "frm.", "backbone_loss.")) for k in ts.state_dict())
    scores = np.load(work / "eval" / "scores.npz")
    from_export = Predictor.from_export(work / "export" / "model.ts")
    from_checkpoint = Predictor.from_checkpoint(work / "last.pt")
    for name, expected in zip(scores["names"][:3], scores["scores"][:3]):
        seq = read_cached(cache, str(name))
        for predictor in (from_export, from_checkpoint):
            got = predictor.logits(seq.joints, seq.layout)
            assert np.abs(got - expected).max() <= 1e-5 * max(1.0, float(np.abs(expected).max())), kind


def test_protogcn_resumes_exactly_with_its_class_centroids(cache, tmp_path):
    """ProtoGCN's training-only state (the loss's layers and its centroid memory, a buffer) is in
    the checkpoint: one epoch plus --resume equals two straight epochs."""
    flags = ("--backbone", "protogcn", *TINY, "--no-fam", "--no-frm", *ONE_EPOCH)
    straight = train(cache, tmp_path / "straight", *flags, "--epochs", "2")
    resumed = train(cache, tmp_path / "resumed", *flags)
    train(cache, resumed, *flags, "--resume", "--epochs", "2")
    assert load_checkpoint(straight / "last.pt").epoch == load_checkpoint(resumed / "last.pt").epoch == 2
    a, b = load_checkpoint(straight / "last.pt").model, load_checkpoint(resumed / "last.pt").model
    assert "backbone_loss.memory" in a and set(a) == set(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.fixture(scope="module")
def utd(tmp_path_factory) -> Path:
    """Generated UTD-MHAD skeletons (Kinect v1, mapped to the models' NTU-25) with a feature set made
    like the training one, as test_zeroshot's targets."""
    root = tmp_path_factory.mktemp("utd")
    generate_utd(root / "utd-mhad", subjects=(1,), trials=(1,), frames=(20, 28), workers=1, progress=False)
    invoke(
        "extract",
        "--dataset",
        "utd-mhad",
        "--root",
        root / "utd-mhad",
        "--out",
        root / "cache",
        "--skeletons-only",
        "--workers",
        1,
        "--quiet",
    )
    write_tiny_features(root / "cache" / "utd-mhad")
    return root / "cache" / "utd-mhad"


def test_zeroshot_with_refine(run, utd):
    """`mmcl zeroshot --refine` scores the mapped UTD-MHAD samples with the backbone, and FRM refines
    those scores exactly as the trained model's refine does."""
    kind, work = run
    out = work / "zeroshot"
    result = invoke(
        "zeroshot", "--checkpoint", work / "last.pt", "--cache", utd, "--refine", "--out", out, "--device", "cpu"
    )
    assert "FRM refined (S_R)" in result.output
    summary = json.loads((out / "zeroshot.json").read_text())
    assert summary["target"] == "utd-mhad" and summary["num_samples"] == 6
    assert summary["results"]["refined"]["refined_samples"] == 6
    plain, refined = (np.load(out / key / "scores.npz") for key in ("skeleton", "refined"))
    model = load_checkpoint(work / "last.pt").build_model()
    assert type(model.backbone).__name__.lower() == kind
    text = FeatureFile(utd / FEATURES_DIR / "tiny.h5").text_input[plain["rows"]]
    with torch.no_grad():
        expected = model.refine(torch.from_numpy(plain["scores"]), torch.from_numpy(text).float())
    np.testing.assert_allclose(refined["scores"], expected.numpy(), rtol=1e-5, atol=1e-6)
    predictor = Predictor.from_checkpoint(work / "last.pt")  # the skeleton scores are the backbone's
    first = read_cached(utd, str(plain["names"][0]))
    np.testing.assert_allclose(plain["scores"][0], predictor.logits(first.joints, first.layout), atol=1e-5)


def test_what_export_pyskl_writes_predicts_as_the_cache(run, cache, tmp_path):
    """The pickle `mmcl export-pyskl` writes (pyskl's (M, T, V, C) keypoints, absent persons dropped)
    holds the samples each backbone reads: the same logits as from the cache."""
    kind, work = run
    invoke("export-pyskl", "--cache", cache, "--out", tmp_path / "demo.pkl", "--quiet")
    exported = pickle.loads((tmp_path / "demo.pkl").read_bytes())
    predictor = Predictor.from_checkpoint(work / "last.pt")
    for ann in exported["annotations"][:3]:
        seq = read_cached(cache, ann["frame_dir"])
        from_pickle = predictor.logits(np.ascontiguousarray(ann["keypoint"].transpose(1, 0, 2, 3)), seq.layout)
        np.testing.assert_allclose(
            from_pickle, predictor.logits(seq.joints, seq.layout), rtol=0, atol=1e-6, err_msg=kind
        )
