"""`mmcl predict`: top-5 classes of a cached sample or a raw skeleton file, prepared exactly as at
test time, with an exported model or a training checkpoint."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from stage2_run import copy_of

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError
from shared.layouts import kinect_v1_to_ntu25, utd_to_kinect_v1
from shared.ntu_skeleton import write_ntu_skeleton
from stage2_train import cli
from stage2_train.deploy.export import export_checkpoint
from stage2_train.deploy.predict import Predictor
from stage2_train.deploy.sequence import read_cached

LINE = re.compile(r"^\s+(\d)\. (.+?)\s+(\d+\.\d\d) %$")


@pytest.fixture(scope="module")
def run(skeleton_cache, bone_run, tmp_path_factory) -> tuple[Path, Path]:
    """(cache dir, work dir): the shared one-epoch bone-stream run (so predict must apply the
    stream), copied so that its export is written into a work dir of this module's own."""
    work = copy_of(bone_run, tmp_path_factory, "predict")
    export_checkpoint(work / "last.pt", work / "export")
    return skeleton_cache, work


def close(a: np.ndarray, b: np.ndarray, rel: float = 1e-5) -> bool:
    """Equal up to float32 rounding relative to the logits' scale (other batch compositions)."""
    return float(np.abs(a - b).max()) <= rel * max(1.0, float(np.abs(b).max()))


def predict_cli(*args: str):
    return CliRunner().invoke(cli.predict, list(args))


def ranked(output: str) -> list[tuple[str, float]]:
    return [(m.group(2), float(m.group(3))) for m in map(LINE.match, output.splitlines()) if m]


# --------------------------------------------------------------------------- same as test time


def test_cached_samples_score_as_in_the_training_evaluation(run):
    """predict's logits equal the test-split scores that training wrote (eval/scores.npz), with
    the export and with the checkpoint: same normalisation, crop, resize and stream."""
    cache, work = run
    scores = np.load(work / "eval" / "scores.npz")
    from_export = Predictor.from_export(work / "export" / "model.ts")
    from_checkpoint = Predictor.from_checkpoint(work / "last.pt")
    for name, expected in zip(scores["names"][:4], scores["scores"][:4]):
        seq = read_cached(cache, str(name))
        assert close(from_export.logits(seq.joints, seq.layout), expected)
        assert close(from_checkpoint.logits(seq.joints, seq.layout), expected)


def test_command_prints_top5_with_probabilities(run):
    cache, work = run
    by_index = predict_cli("--model", str(work / "export" / "model.ts"), "--cache", str(cache.parent), "--sample", "0")
    assert by_index.exit_code == 0, by_index.output
    top = ranked(by_index.output)
    assert len(top) == 5 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert 0 < sum(p for _, p in top) <= 100.01
    name = SkeletonCache(cache).names[0]
    assert f"sample: {name}" in by_index.output and "true class: drink water" in by_index.output
    by_name = predict_cli("--checkpoint", str(work / "last.pt"), "--cache", str(cache), "--sample", name)
    assert by_name.exit_code == 0, by_name.output
    assert [n for n, _ in ranked(by_name.output)] == [n for n, _ in top]


def test_onnx_export_predicts_the_same(run):
    pytest.importorskip("onnxruntime")
    cache, work = run
    seq = read_cached(cache, "3")
    onnx_logits = Predictor.from_export(work / "export" / "model.onnx").logits(seq.joints, seq.layout)
    assert close(onnx_logits, Predictor.from_export(work / "export").logits(seq.joints, seq.layout))


# --------------------------------------------------------------------------- raw files


def test_raw_ntu_file_predicts_like_its_cached_sample(run, tmp_path):
    """A .skeleton file of a cached one-person sample: read and cleaned by shared.readers, it
    scores as the cached sample (up to the file's text precision)."""
    cache, work = run
    skeletons = SkeletonCache(cache)
    row = 9  # a one-person class: the second actor is absent
    name, joints = skeletons.names[row], skeletons.sample(row)["joints"]
    assert not joints[:, 1].any()
    path = tmp_path / f"{name}.skeleton"
    write_ntu_skeleton(path, joints[:, :1], np.zeros((len(joints), 1, 25, 2)), body_ids=[1])
    predictor = Predictor.from_export(work / "export" / "model.ts")
    result = predict_cli(str(path), "--model", str(work / "export" / "model.ts"))
    assert result.exit_code == 0, result.output
    cached = predictor.logits(joints, "ntu25")
    names = predictor.card.class_names
    assert [n for n, _ in ranked(result.output)] == [names[i] for i in np.argsort(-cached)[:5]]
    assert f"true class: {names[int(skeletons.labels[row])]}" in result.output


def test_raw_nw_ucla_file_is_mapped_to_the_models_layout(run, tmp_path):
    """Kinect v1 joints (20, one person) into an NTU-25 two-person model: mapped and padded."""
    _, work = run
    rng = np.random.default_rng(0)
    joints = (rng.normal(0, 0.2, (30, 1, 20, 3)) + [0, 0, 3]).astype(np.float32)
    path = tmp_path / "a01_s01_e01_v01.json"
    path.write_text(json.dumps({"file_name": path.stem, "skeletons": joints[:, 0].tolist()}))
    result = predict_cli(str(path), "--model", str(work / "export"))
    assert result.exit_code == 0, result.output
    assert "Northwestern-UCLA" in result.output and "true class: pick up with one hand" in result.output
    predictor = Predictor.from_export(work / "export")
    mapped = np.zeros((30, 2, 25, 3), np.float32)
    mapped[:, :1] = kinect_v1_to_ntu25(joints)
    expected = predictor.logits(mapped, "ntu25")
    names = predictor.card.class_names
    assert [n for n, _ in ranked(result.output)] == [names[i] for i in np.argsort(-expected)[:5]]


def test_raw_utd_mhad_file_is_reordered_and_mapped(run, tmp_path):
    """UTD-MHAD's own joint order -> Kinect v1 (by the reader) -> NTU-25 (by predict)."""
    import scipy.io

    _, work = run
    rng = np.random.default_rng(1)
    utd = (rng.normal(0, 0.2, (25, 20, 3)) + [0, 0, 3]).astype(np.float32)  # T, V, xyz
    path = tmp_path / "a27_s1_t1_skeleton.mat"
    scipy.io.savemat(path, {"d_skel": utd.transpose(1, 2, 0)})  # stored as 20 x 3 x T
    result = predict_cli(str(path), "--model", str(work / "export" / "model.ts"))
    assert result.exit_code == 0, result.output
    assert "true class: squat (two arms stretch out)" in result.output
    predictor = Predictor.from_export(work / "export")
    mapped = np.zeros((25, 2, 25, 3), np.float32)
    mapped[:, 0] = kinect_v1_to_ntu25(utd_to_kinect_v1(utd))
    expected = predictor.logits(mapped, "ntu25")
    names = predictor.card.class_names
    assert [n for n, _ in ranked(result.output)] == [names[i] for i in np.argsort(-expected)[:5]]


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "one of --model"),
        (["--model", "m.ts", "--checkpoint", "c.pt"], "one of --model"),
        (["--model", "{export}"], "either a skeleton file or --cache"),
        (["--model", "{export}", "--sample", "0"], "--sample needs --cache"),
        (["--model", "{export}", "--cache", "{cache}", "--sample", "999"], "holds 27 samples"),
        (["--model", "{export}", "--cache", "{cache}", "--sample", "S999"], "no such sample name"),
        (["--model", "{cache}/skeletons.h5", "--cache", "{cache}", "--sample", "0"], "not a loadable TorchScript"),
        (["{cache}/skeletons.h5", "--model", "{export}"], "cannot tell the dataset"),
        (
            ["--model", "{export}/model.onnx", "--cache", "{cache}", "--sample", "0", "--device", "cuda"],
            "ONNX models run on the CPU",
        ),
    ],
)
def test_bad_invocations_fail_clearly(run, args, message):
    cache, work = run
    args = [a.format(export=work / "export", cache=cache) for a in args]
    result = predict_cli(*args)
    assert isinstance(result.exception, MMCLError), result.output
    assert message in str(result.exception)


@pytest.mark.parametrize("bad", [np.inf, np.nan, 1e30])
def test_non_finite_joints_are_refused(run, bad):
    """Such a sequence once gave "nan %" for every class (or 100 % for one) with exit 0."""
    cache, work = run
    seq = read_cached(cache, "0")
    joints = seq.joints.copy()
    joints[3, 0, 7, 1] = bad
    with pytest.raises(MMCLError, match=r"the sequence.*frame 3 \(from 0\), person 0, joint 7: y = "):
        Predictor.from_checkpoint(work / "last.pt").logits(joints, seq.layout)


# --------------------------------------------------------------------------- many files (issue #25)


@pytest.fixture(scope="module")
def folder(run, tmp_path_factory) -> Path:
    """Three good arrays (two NTU-25, one Kinect v1 with 20 joints) and two bad files."""
    cache, _ = run
    folder = tmp_path_factory.mktemp("many")
    for n in range(2):
        np.savez(folder / f"good_{n}.npz", joints=read_cached(cache, str(n)).joints)
    (folder / "sub").mkdir()
    np.save(folder / "sub" / "kinect.npy", read_cached(cache, "2").joints[:, :1, :20])
    (folder / "broken.npz").write_bytes(b"not a zip")
    (folder / "notes.txt").write_text("not a skeleton: skipped in a folder")
    return folder


def test_a_folder_is_predicted_in_batches_one_line_per_bad_file(run, folder, tmp_path):
    cache, work = run
    out = tmp_path / "preds.csv"
    result = CliRunner().invoke(
        cli.predict,
        [str(folder), "--model", str(work / "export"), "--out", str(out), "--batch-size", "2"],
        standalone_mode=False,
    )
    assert result.exception is None and result.return_value == 1  # the exit status `mmcl predict` gives
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "Traceback" not in result.stderr + result.stdout
    assert any("broken.npz" in e and "not a readable numpy" in e for e in errors)
    assert any(
        "kinect.npy: 20 joints per frame, but the model's (ntu25) layout ntu25 has 25; pass --layout kinect_v1" in e
        for e in errors
    )
    rows = out.read_text().splitlines()
    assert rows[0].startswith("file,true_class,class_1,percent_1") and len(rows) == 1 + 4
    predictor = Predictor.from_export(work / "export" / "model.ts")
    for n in range(2):  # batched (2 a batch) as alone
        seq = read_cached(cache, str(n))
        expected = predictor.card.class_names[int(np.argmax(predictor.logits(seq.joints, seq.layout)))]
        row = next(r for r in rows if f"good_{n}.npz" in r)
        assert row.split(",")[2] == expected


def test_layout_flag_maps_a_kinect_array(run, folder, tmp_path):
    cache, work = run
    out = tmp_path / "preds.json"
    result = predict_cli(
        str(folder / "sub" / "kinect.npy"),
        "--layout",
        "kinect_v1",
        "--checkpoint",
        str(work / "last.pt"),
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())
    assert row["error"] is None and len(row["predictions"]) == 5
    predictor = Predictor.from_checkpoint(work / "last.pt")
    joints = np.load(folder / "sub" / "kinect.npy")
    expected = predictor.logits(joints, "kinect_v1")
    assert row["predictions"][0]["index"] == int(np.argmax(expected))
    assert "kinect_v1 joint order" in result.output


def test_batched_logits_equal_one_by_one(run):
    cache, work = run
    predictor = Predictor.from_checkpoint(work / "last.pt")
    seqs = [read_cached(cache, str(n)) for n in range(5)]
    from stage2_train.deploy.predict import to_model_layout

    batch = predictor.logits_batch([to_model_layout(s.joints, s.layout, predictor.card) for s in seqs])
    for s, row in zip(seqs, batch):
        assert close(row, predictor.logits(s.joints, s.layout))
