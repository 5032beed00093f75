"""Fine-tuning across skeleton layouts (domain-adaptive SYSU): a tiny NTU-layout model trained by
`mmcl train`, then fine-tuned with --init-from on a tiny SYSU cache (Kinect v1, 20 joints, one
person), which it reads mapped to NTU-25 and padded to the checkpoint's two persons. Every later
command (test, export, predict, zero-shot) must prepare its input the same way."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.cache_schema import SKELETON_FILE, SkeletonCache, SkeletonCacheWriter
from shared.errors import MMCLError
from shared.layouts import NTU25, kinect_v1_to_ntu25, pad_persons
from shared.registry import SYSU
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.training.weight_transfer import load_matching_weights, plan_transfer
from stage2_train.training.config import TrainConfig
from stage2_train.training.input_resolution import resolve_input_layout
from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig
from stage2_train.data.transforms import AugmentConfig, BatchAugment
from stage2_train.deploy.export import ModelCard
from stage2_train.data.input_layout import NoLayoutMap, TooManyPersons, map_input
from stage2_train.models.mmcl_model import MMCLModel
from stage2_train.deploy.predict import Predictor
from stage2_cache import motion, write_tiny_features
from stage2_run import COMMON, ONE_EPOCH, invoke

# One epoch of a narrow network (base_channel 8, from the work dir's tiny.yaml): seconds on 2 cores.
TINY = [*COMMON, *ONE_EPOCH, "--test-batch-size", "64", "--seed", "2"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("finetune")
    (work / "tiny.yaml").write_text("base_channel: 8\n")
    return work


def write_sysu_cache(root: Path, subjects=(1, 2, 21), frames=(12, 20), seed: int = 0) -> Path:
    """root/sysu/skeletons.h5 in SYSU's own layout (Kinect v1, one person) + a feature set as wide
    as the source run's, so FAM and FRM can load. Subjects 1-20 train under xsub, 21-40 test."""
    rng = np.random.default_rng(seed)
    folder = root / SYSU.name
    with SkeletonCacheWriter(folder / SKELETON_FILE, SYSU, "/generated") as w:
        for s in subjects:
            for c in SYSU.classes:
                t = int(rng.integers(*frames))
                joints = motion(SYSU.label_of_action(c.action), t, rng, 1, SYSU.layout.num_joints)
                w.append(SYSU.parse_name(f"s{s:02d}_a{c.action:02d}"), joints, np.arange(t, dtype=np.int32))
    write_tiny_features(folder)
    return folder


@pytest.fixture(scope="module")
def source(mmcl_run) -> Path:
    """An NTU-layout (demo: 25 joints, 2 persons, 9 classes) model with FAM and FRM, base width 8: the
    shared run's."""
    return mmcl_run / "last.pt"


@pytest.fixture(scope="module")
def sysu(work) -> Path:
    return write_sysu_cache(work / "cache")


@pytest.fixture(scope="module")
def finetuned(work, source, sysu) -> tuple[Path, str]:
    """`mmcl train --cache <sysu> --init-from <source>`: no --layout, so the default applies."""
    result = invoke(
        "train",
        "--cache",
        sysu,
        "--work-dir",
        work / "ft",
        "--init-from",
        source,
        "--config",
        work / "tiny.yaml",
        *TINY,
    )
    return work / "ft", result.output


def scores(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "scores.npz") as z:
        return {k: z[k] for k in z.files}


# --------------------------------------------------------------------------- the fine-tuned run


def test_kinect_cache_is_mapped_to_the_checkpoints_layout_by_default(finetuned):
    run, output = finetuned
    assert "mapping the cache's kinect_v1 joints to ntu25" in output
    assert "input: sysu skeletons kinect_v1 (20 joints, 1 person) -> ntu25 (25 joints, 2 persons)" in output
    ckpt = load_checkpoint(run / "last.pt")
    model = ckpt.spec.input
    assert (model.layout, model.num_person, model.num_point) == ("ntu25", 2, 25)
    assert (ckpt.train_config().data.layout, ckpt.train_config().data.persons) == ("ntu25", 2)
    backbone = ckpt.spec.model.backbone
    assert (backbone.graph, backbone.num_point, backbone.num_person, backbone.num_class) == ("ntu25", 25, 2, 12)
    assert ckpt.spec.class_names == SYSU.class_names


def test_init_report_names_loaded_and_reinitialised_tensors(finetuned):
    _, output = finetuned
    lines = output.splitlines()
    loaded = next(line for line in lines if line.startswith("--init-from") and "loaded" in line)
    n_backbone = len(MMCLModel(MMCLModelConfig(CTRGCNConfig(9, 25, 2, "ntu25", base_channel=8))).backbone.state_dict())
    # everything but the classifier's weight and bias; FAM whole; FRM's MLP but not its class vectors
    assert f"backbone {n_backbone - 2}/{n_backbone}" in loaded and "fam 4/4" in loaded and "frm 4/5" in loaded
    fresh = sorted(line.split()[1].rstrip(":") for line in lines if line.startswith("  re-initialised"))
    assert fresh == ["backbone.fc.bias", "backbone.fc.weight", "frm.vectors"]
    assert "re-initialised backbone.fc.weight: shape (9, 32) in the checkpoint, (12, 32) here" in output


def test_training_starts_from_the_source_weights(finetuned, source):
    """The fine-tuned run's model, rebuilt before any step and initialised as training does:
    every backbone tensor but the classifier equals the source checkpoint's, data_bn and the
    NTU-25 adjacencies included; the classifier is a fresh 12-class one."""
    run, _ = finetuned
    src = load_checkpoint(source).model
    model = MMCLModel(load_checkpoint(run / "last.pt").spec.model)
    transfer = load_matching_weights(model, src)
    state = model.state_dict()
    assert set(transfer.fresh) == {"backbone.fc.weight", "backbone.fc.bias", "frm.vectors"}
    for name, tensor in state.items():
        if name not in transfer.fresh:
            torch.testing.assert_close(tensor, src[name], rtol=0, atol=0, msg=name)
    assert state["backbone.data_bn.weight"].shape == (2 * 25 * 3,)
    assert state["backbone.l1.gcn1.PA"].shape[-2:] == (25, 25)
    assert state["backbone.fc.weight"].shape[0] == 12 and src["backbone.fc.weight"].shape[0] == 9
    torch.testing.assert_close(state["frm.vectors"], torch.ones(2, 12))  # FRM's initial M_r


def test_a_zero_learning_rate_run_keeps_the_source_parameters(work, source, sysu):
    """End to end through `mmcl train`: with lr 0 no step moves a parameter, so the saved
    backbone parameters are exactly what --init-from loaded (BatchNorm running statistics,
    buffers that the forward pass updates, are left out)."""
    invoke(
        "train",
        "--cache",
        sysu,
        "--work-dir",
        work / "lr0",
        "--init-from",
        source,
        "--lr",
        0,
        "--no-fam",
        "--no-frm",
        "--config",
        work / "tiny.yaml",
        *TINY,
    )
    src, got = load_checkpoint(source).model, load_checkpoint(work / "lr0" / "last.pt").model
    params = {n for n, _ in load_checkpoint(work / "lr0" / "last.pt").build_model().named_parameters()}
    compared = [n for n in params if n.startswith("backbone.") and not n.startswith("backbone.fc.")]
    assert len(compared) > 100
    for name in compared:
        torch.testing.assert_close(got[name], src[name], rtol=0, atol=0, msg=name)
    assert not any(n.startswith(("fam.", "frm.")) for n in got)


def test_run_writes_its_report_and_mmcl_test_reproduces_it(finetuned, work):
    run, _ = finetuned
    summary = json.loads((run / "eval" / "summary.json").read_text())
    assert summary["dataset"] == "sysu" and summary["num_samples"] == 12  # subject 21: one per class
    invoke("test", "--checkpoint", run / "last.pt", "--out", work / "retest")
    again = json.loads((work / "retest" / "summary.json").read_text())
    assert again["top1"] == summary["top1"] and again["top5"] == summary["top5"]
    a, b = scores(run / "eval"), scores(work / "retest")
    np.testing.assert_array_equal(a["rows"], b["rows"])
    np.testing.assert_allclose(a["scores"], b["scores"], rtol=1e-5, atol=1e-5)


def test_export_and_predict_map_the_kinect_sequence_as_training_did(finetuned, sysu):
    """The export card takes the fine-tuned layout; predict, given a cached SYSU sample in its own
    Kinect v1 layout, maps and pads it and scores it as the run's test report did."""
    run, _ = finetuned
    model = ModelCard.of(load_checkpoint(run / "last.pt"), run / "last.pt").spec.input
    assert (model.layout, model.num_point, model.num_person) == ("ntu25", 25, 2)
    report = scores(run / "eval")
    skeletons = SkeletonCache(sysu)
    predictor = Predictor.from_checkpoint(run / "last.pt")
    for i, row in enumerate(report["rows"][:3]):
        logits = predictor.logits(skeletons.sample(int(row))["joints"], skeletons.layout)
        np.testing.assert_allclose(logits, report["scores"][i], rtol=1e-4, atol=1e-4)
    result = invoke("predict", "--checkpoint", run / "last.pt", "--cache", sysu, "--sample", int(report["rows"][0]))
    assert f"true class: {SYSU.class_names[int(report['labels'][0])]}" in result.output


def test_zeroshot_with_the_finetuned_checkpoint_maps_like_training(finetuned, sysu, work):
    """Zero-shot reads the layout from the checkpoint too: on the SYSU test split its skeleton
    scores equal the run's for every class with an NTU counterpart."""
    run, _ = finetuned
    invoke("zeroshot", "--checkpoint", run / "last.pt", "--cache", sysu, "--protocol", "xsub", "--out", work / "zs")
    zs, report = scores(work / "zs" / "skeleton"), scores(run / "eval")
    mapped = {c.action - 1 for c in SYSU.classes if c.ntu_id is not None}
    assert sorted(zs["rows"]) == sorted(r for r, y in zip(report["rows"], report["labels"]) if y in mapped)
    by_row = dict(zip(report["rows"].tolist(), report["scores"]))
    for row, s in zip(zs["rows"].tolist(), zs["scores"]):
        np.testing.assert_allclose(s, by_row[row], rtol=1e-4, atol=1e-4)


def test_resume_refuses_another_layout(finetuned, sysu):
    run, _ = finetuned
    result = invoke(
        "train", "--cache", sysu, "--work-dir", run, "--resume", "--layout", "kinect_v1", "--device", "cpu", ok=False
    )
    assert isinstance(result.exception, MMCLError) and "layout 'ntu25' -> 'kinect_v1'" in str(result.exception)


# --------------------------------------------------------------------------- resolution rules


def test_layout_and_persons_resolution(source, sysu, feature_cache):
    skeletons = SkeletonCache(sysu)

    def resolve(**kw):
        init = load_checkpoint(kw["init_from"]).spec.input if "init_from" in kw else None
        return resolve_input_layout(TrainConfig.from_dict({"dataset": "sysu", **kw}), skeletons, init)

    cfg, notes = resolve()  # no checkpoint: the cache's own layout, nothing to say
    assert (cfg.data.layout, cfg.data.persons, notes) == ("kinect_v1", 1, [])
    cfg, notes = resolve(init_from=str(source), layout="kinect_v1")  # kept, padded to the checkpoint's 2
    assert (cfg.data.layout, cfg.data.persons) == ("kinect_v1", 2) and "mapping" not in " ".join(notes)
    cfg, _ = resolve(layout="ntu25", persons=3)  # explicit, no checkpoint
    assert (cfg.data.layout, cfg.data.persons) == ("ntu25", 3)
    with pytest.raises(MMCLError, match="no mapping to kinect_v1"):
        resolve_input_layout(
            TrainConfig.from_dict({"dataset": "demo", "layout": "kinect_v1"}), SkeletonCache(feature_cache)
        )
    with pytest.raises(MMCLError, match="up to 2 persons"):
        resolve_input_layout(TrainConfig.from_dict({"dataset": "demo", "persons": 1}), SkeletonCache(feature_cache))
    with pytest.raises(MMCLError, match="layout = .openpose18.: expected one of kinect_v1, ntu25"):
        TrainConfig.from_dict({"layout": "openpose18"})


def test_a_head_loads_whole_or_not_at_all():
    """FAM trained on 12-d RGB features, fine-tuned on 7-d ones: its 256 -> 256 layer matches in
    shape but is left fresh with the rest of the head; FRM (same text width) loads."""

    def model(rgb_dim: int, classes: int) -> MMCLModel:
        return MMCLModel(
            MMCLModelConfig(
                CTRGCNConfig(classes, 25, 2, "ntu25", base_channel=8),
                use_fam=True,
                use_frm=True,
                rgb_dim=rgb_dim,
                text_dim=10,
            )
        )

    plan = plan_transfer(model(12, 9).state_dict(), model(7, 9).state_dict())
    assert sorted(plan.fresh) == ["fam.proj.0.bias", "fam.proj.0.weight", "fam.proj.2.bias", "fam.proj.2.weight"]
    assert "fam loads whole and fam.proj.0.weight differs" in plan.fresh["fam.proj.2.weight"]
    assert not plan.unused
    plan = plan_transfer(
        model(12, 9).state_dict(),
        MMCLModel(MMCLModelConfig(CTRGCNConfig(9, 25, 2, "ntu25", base_channel=8))).state_dict(),
    )
    assert not plan.fresh and {n.split(".")[0] for n in plan.unused} == {"fam", "frm"}


def test_ucla_view_keeps_a_padded_person_absent():
    """NW-UCLA fine-tuned from a two-person NTU model: the padded person stays zero through the
    NW-UCLA augmentation's min-max scaling and does not change how the real one is scaled."""
    rng = np.random.default_rng(0)
    one = kinect_v1_to_ntu25(motion(3, 30, rng, 1, 20) + np.float32([1.0, 0.5, 0.0]))  # (T, 1, 25, 3)
    lengths = torch.tensor([30])
    for train in (False, True):
        augment = BatchAugment(AugmentConfig(window=16, kind="ucla-view"), train=train, center=NTU25.center)
        alone = augment(torch.from_numpy(one)[None], lengths, torch.Generator().manual_seed(1))
        padded = augment(torch.from_numpy(pad_persons(one, 2))[None], lengths, torch.Generator().manual_seed(1))
        torch.testing.assert_close(padded[:, :, :1], alone)
        assert not padded[:, :, 1].any() and alone.abs().max() <= 1 + 1e-6


def test_map_input_checks_any_source_against_the_networks_layout_and_persons():
    plan = map_input("kinect_v1", 1, "ntu25", 2)
    assert plan.changed and plan.layout is NTU25
    joints = np.random.default_rng(0).normal(size=(5, 1, 20, 3)).astype(np.float32)
    assert np.array_equal(plan.sample(joints), pad_persons(kinect_v1_to_ntu25(joints), 2))
    with pytest.raises(TooManyPersons):
        plan.sample(np.zeros((5, 3, 20, 3), np.float32))
    with pytest.raises(TooManyPersons):
        map_input("ntu25", 2, "ntu25", 1)
    with pytest.raises(NoLayoutMap):
        map_input("ntu25", 1, "kinect_v1", 1)
    assert not map_input("ntu25", 2, "ntu25", 2).changed


# --------------------------------------------------------------------------- the README's example, as written


def test_init_from_keeps_the_checkpoints_width_and_recipe(work, source, sysu):
    """`mmcl train --cache cache/sysu --protocol xsub --init-from <demo run>/last.pt`, no --config and
    no --recipe (only flags that keep the test short): the network keeps the checkpoint's width (8,
    not the mmcl recipe's 64), the demo recipe it was trained with is kept, every backbone tensor but
    the classifier loads, and the report is a few lines, not one per tensor."""
    result = invoke(
        "train",
        "--cache",
        sysu,
        "--protocol",
        "xsub",
        "--init-from",
        source,
        "--work-dir",
        work / "as-written",
        *ONE_EPOCH,
        "--device",
        "cpu",
    )
    lines = result.output.splitlines()
    settings = next(line for line in lines if line.startswith("settings:"))
    assert "recipe demo" in settings and "base_channel 8" in settings and "(--init-from)" in settings
    ckpt = load_checkpoint(work / "as-written" / "last.pt")
    assert ckpt.spec.model.backbone.base_channel == 8 and ckpt.config["recipe"] == "demo"
    report = [line for line in lines if line.startswith("--init-from") or line.startswith("  ")]
    assert len(report) <= 6, report
    loaded = next(line for line in report if "loaded" in line)
    n_backbone = len(MMCLModel(MMCLModelConfig(CTRGCNConfig(9, 25, 2, "ntu25", base_channel=8))).backbone.state_dict())
    assert f"backbone {n_backbone - 2}/{n_backbone}" in loaded
    transfer = plan_transfer(load_checkpoint(source).model, ckpt.model)
    assert sorted(k for k in transfer.fresh if k.startswith("backbone.")) == ["backbone.fc.bias", "backbone.fc.weight"]


def test_a_config_file_still_chooses_another_width(work, source, sysu):
    (work / "wide.yaml").write_text("base_channel: 12\n")
    result = invoke(
        "train",
        "--cache",
        sysu,
        "--init-from",
        source,
        "--config",
        work / "wide.yaml",
        "--work-dir",
        work / "wider",
        *TINY,
    )
    assert load_checkpoint(work / "wider" / "last.pt").spec.model.backbone.base_channel == 12
    assert "base_channel 12 (config file" in result.output
