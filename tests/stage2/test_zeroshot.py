"""`mmcl zeroshot` end to end: a tiny model trained on the demo (NTU layout) scored on generated
UTD-MHAD and SYSU-3D-HOI data, extracted by `mmcl extract`, with and without FRM refinement."""

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from shared.cache_schema import FEATURES_DIR, FeatureFile, SkeletonCache, read_feature_file, write_feature_file
from shared.errors import MMCLError
from shared.layouts import KINECT_V1, NTU25
from shared.registry import DEMO, NTU60, UTD_MHAD
from stage1_extract.demo.dataset import generate_sysu, generate_utd
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.data.dataset import JointSource
from stage2_train.evaluation.evaluate import topk_accuracy
from stage2_train.models.model_spec import InputSpec, ModelSpec, ntu_ids_of
from stage2_train.transfer.class_mapping import class_mapping
from stage2_train.transfer.zeroshot import check_refine_features, target_input
from stage2_cache import write_tiny_features
from stage2_run import invoke


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zeroshot")


@pytest.fixture(scope="module")
def run_dir(mmcl_run) -> Path:
    """The shared tiny demo model trained one epoch with FAM and FRM by `mmcl train` (FRM head kept)."""
    return mmcl_run


@pytest.fixture(scope="module")
def targets(work) -> dict[str, Path]:
    """Generated UTD-MHAD and SYSU data in their release layouts, through `mmcl extract
    --skeletons-only`, plus feature sets made like the training ones (same models and prompts)."""
    utd, sysu = work / "data" / "utd-mhad", work / "data" / "sysu"
    generate_utd(utd, subjects=(1,), trials=(1,), frames=(20, 28), workers=1, progress=False)
    # an action without an NTU counterpart, which zero-shot skips
    shutil.copy(utd / "Skeleton" / "a3_s1_t1_skeleton.mat", utd / "Skeleton" / "a1_s1_t1_skeleton.mat")
    generate_sysu(sysu, subjects=(1, 21), per_subject=None, frames=(20, 28), workers=1, progress=False)
    out = {}
    for name, root in (("utd-mhad", utd), ("sysu", sysu)):
        invoke(
            "extract",
            "--dataset",
            name,
            "--root",
            root,
            "--out",
            work / "tcache",
            "--skeletons-only",
            "--workers",
            1,
            "--quiet",
        )
        out[name] = work / "tcache" / name
        write_tiny_features(out[name])
    return out


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_utd_zeroshot_scores_every_checkpoint_class_on_mapped_samples(run_dir, targets, work):
    out = work / "zs-utd"
    result = invoke("zeroshot", "--checkpoint", run_dir, "--cache", targets["utd-mhad"], "--out", out)
    assert "skeleton (S_M)" in result.output and "FRM refined" not in result.output
    summary = json.loads((out / "zeroshot.json").read_text())
    assert summary["target"] == "utd-mhad" and summary["trained_on"] == "demo"
    assert summary["num_samples"] == 6 and summary["num_skipped_unmapped"] == 1
    assert f"{100 * summary['results']['skeleton']['top1']:.2f}%" in result.output  # printed

    saved = np.load(out / "skeleton" / "scores.npz")
    assert saved["scores"].shape == (6, DEMO.num_classes)  # over all the checkpoint's classes
    expected = {
        f"a{a}_s1_t1": DEMO.class_index_by_ntu_id()[n]
        for a, n in ((3, 23), (6, 96), (7, 63), (24, 9), (25, 8), (27, 80))
    }
    assert dict(zip(saved["names"].tolist(), saved["labels"].tolist())) == expected
    for k in (1, 5):
        assert summary["results"]["skeleton"][f"top{k}"] == topk_accuracy(saved["scores"], saved["labels"], k)

    rows = read_csv(out / "per_class.csv")
    assert len(rows) == UTD_MHAD.num_classes  # every target class, mapped or not
    by_action = {int(r["action"]): r for r in rows}
    assert by_action[1]["ntu_id"] == "unmapped" and by_action[1]["skipped"] == "1"
    assert by_action[3]["checkpoint_name"] == "hand waving" and by_action[3]["support"] == "1"
    assert float(by_action[3]["skeleton_top5"]) in (0.0, 1.0)


def test_sysu_zeroshot_with_refine_applies_the_trained_frm(run_dir, targets, work):
    out = work / "zs-sysu"
    result = invoke(
        "zeroshot", "--checkpoint", run_dir / "last.pt", "--cache", targets["sysu"], "--refine", "--out", out
    )
    assert "FRM refined (S_R)" in result.output
    summary = json.loads((out / "zeroshot.json").read_text())
    assert summary["num_samples"] == 6 and summary["results"]["refined"]["refined_samples"] == 6

    plain, refined = (np.load(out / key / "scores.npz") for key in ("skeleton", "refined"))
    assert plain["names"].tolist() == refined["names"].tolist()
    model = load_checkpoint(run_dir / "last.pt").build_model()
    text = FeatureFile(targets["sysu"] / FEATURES_DIR / "tiny.h5").text_input[plain["rows"]]
    with torch.no_grad():
        expected = model.refine(torch.from_numpy(plain["scores"]), torch.from_numpy(text).float())
    np.testing.assert_allclose(refined["scores"], expected.numpy(), rtol=1e-5, atol=1e-6)
    for k in (1, 5):
        assert summary["results"]["refined"][f"top{k}"] == topk_accuracy(refined["scores"], refined["labels"], k)
    header = read_csv(out / "per_class.csv")[0]
    assert {"skeleton_top1", "refined_top1", "refined_top5"} <= set(header)


def test_sysu_protocol_restricts_to_its_test_split(run_dir, targets, work):
    out = work / "zs-sysu-xsub"
    invoke("zeroshot", "--checkpoint", run_dir, "--cache", targets["sysu"], "--protocol", "xsub", "--out", out)
    names = np.load(out / "skeleton" / "scores.npz")["names"].tolist()
    assert names and all(n.startswith("s21_") for n in names)  # subjects 21-40 test


def test_refine_refuses_features_of_other_models_or_prompts(run_dir, targets):
    folder = targets["utd-mhad"]
    header, block = read_feature_file(folder / FEATURES_DIR / "tiny.h5")
    header.attrs = {**header.attrs, "mllm": "another-mllm"}
    write_feature_file(folder / FEATURES_DIR / "other.h5", header, block, complete=True)
    try:
        result = invoke(
            "zeroshot", "--checkpoint", run_dir, "--cache", folder, "--refine", "--features", "other", ok=False
        )
        assert result.exit_code != 0
        assert "other.h5" in str(result.exception) and "mllm: 'another-mllm' here, 'none' in training" in str(
            result.exception
        )
        # without --refine the features are not read
        invoke("zeroshot", "--checkpoint", run_dir, "--cache", folder, "--out", folder.parent / "zs-x")
    finally:
        (folder / FEATURES_DIR / "other.h5").unlink()


def test_refine_needs_a_checkpoint_with_frm(run_dir, targets):
    spec = load_checkpoint(run_dir / "last.pt").spec
    spec = dataclasses.replace(spec, model=dataclasses.replace(spec.model, use_frm=False))
    from stage2_train.data.features import load_features

    target = SkeletonCache(targets["sysu"])
    features = load_features(targets["sysu"], None, target, need_rgb=False, need_text=True)
    with pytest.raises(MMCLError, match="trained without FRM"):
        check_refine_features(spec, run_dir / "last.pt", features)


def model_input(layout: str, num_person: int, num_point: int) -> InputSpec:
    return InputSpec(layout, num_person, num_point, 3, 12, "joint", "crop-rotate", 0.95, 1)


def ntu60_spec(class_names: list[str]) -> ModelSpec:
    """The description of a model trained on NTU RGB+D 60 (the weights play no part in the mapping)."""
    return ModelSpec(
        model=None,
        input=model_input("ntu25", 2, 25),
        dataset="ntu60",
        protocol="xsub",
        class_names=class_names,
        ntu_ids=ntu_ids_of("ntu60", class_names),
    )


def test_checkpoint_without_a_mapped_class_fails_clearly(run_dir):
    ckpt = ntu60_spec(NTU60.class_names)  # NTU60 lacks A063, A080, A096
    needed = {UTD_MHAD.label_of_action(a) for a in (3, 7)}
    with pytest.raises(MMCLError, match=r"no class for NTU action A063, which UTD-MHAD class 7 'basketball shoot'"):
        class_mapping(UTD_MHAD, ckpt, Path("ntu60.pt"), needed)
    mapping = class_mapping(UTD_MHAD, ckpt, Path("ntu60.pt"), {UTD_MHAD.label_of_action(3)})
    assert mapping.to_checkpoint[UTD_MHAD.label_of_action(3)] == 22  # A023 hand waving
    with pytest.raises(MMCLError, match="class names are not those of NTU RGB"):
        class_mapping(UTD_MHAD, ntu60_spec(NTU60.class_names[:50]), Path("x.pt"), needed)


def test_layouts_without_a_mapping_fail_clearly(feature_cache, targets):
    demo_cache = SkeletonCache(feature_cache)  # NTU-25 skeletons
    with pytest.raises(MMCLError, match="kinect_v1 skeleton layout .* holds ntu25 skeletons .* no mapping"):
        target_input(demo_cache, model_input("kinect_v1", 2, 20), Path("ucla.pt"))
    with pytest.raises(MMCLError, match="up to 2 persons"):
        target_input(demo_cache, model_input("ntu25", 1, 25), Path("x.pt"))


def test_target_joints_are_mapped_to_ntu25_and_padded(targets):
    cache = SkeletonCache(targets["utd-mhad"])
    view = target_input(cache, model_input("ntu25", 2, 25), Path("x.pt"))
    raw = JointSource(cache)[0]
    mapped = view.joints(JointSource(cache))[0]
    assert mapped.shape == (len(raw), 2, 25, 3) and not mapped[:, 1].any()
    np.testing.assert_array_equal(
        mapped[:, 0, NTU25.joint_names.index("SpineMid")], raw[:, 0, KINECT_V1.joint_names.index("Spine")]
    )


def test_the_checkpoints_own_training_samples_are_refused_unless_forced(run_dir, feature_cache, work):
    """The demo cache the model trained on: its 18 xsub training samples are refused; its test split
    (--protocol xsub) is scored; --force scores all 27 with the warning in zeroshot.json."""
    own = feature_cache
    result = invoke("zeroshot", "--checkpoint", run_dir, "--cache", own, "--out", work / "own", ok=False)
    assert isinstance(result.exception, MMCLError)
    assert "18 of the 27 samples to score are in its xsub training split" in str(result.exception)
    assert "--force" in str(result.exception) and not (work / "own").exists()
    invoke(
        "zeroshot",
        "--checkpoint",
        run_dir,
        "--cache",
        own,
        "--protocol",
        "xsub",
        "--out",
        work / "own-test",
        "--batch-size",
        4,
    )  # the former name of --test-batch-size still works
    assert json.loads((work / "own-test" / "zeroshot.json").read_text())["warnings"] == []
    invoke(
        "zeroshot",
        "--checkpoint",
        run_dir,
        "--cache",
        own,
        "--force",
        "--test-batch-size",
        4,
        "--out",
        work / "own-forced",
    )
    summary = json.loads((work / "own-forced" / "zeroshot.json").read_text())
    assert summary["num_samples"] == 27 and "memorised" in summary["warnings"][0]
