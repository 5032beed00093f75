"""`mmcl ensemble`: weighted fusion of score files, aligned by sample name, with weight search.

Score files come from the training code itself: real 1-epoch runs for the file formats, and
`evaluate.write_report` (the writer `mmcl train`/`mmcl test` use) for controlled scores.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from shared.errors import MMCLError
from stage2_train import cli
from stage2_train.evaluation.ensemble import Weights, default_weights, ensemble, fuse, run_ensemble, search_weights
from stage2_train.evaluation.evaluate import SplitScores, topk_accuracy, write_report
from stage2_train.evaluation.score_files import align, load_score_file

FOUR = ("joint", "bone", "joint-motion", "bone-motion")


@pytest.fixture(scope="module")
def runs(skeleton_cache, joint_run, bone_run) -> tuple[Path, dict[str, Path]]:
    """The shared tiny cache and its two real 1-epoch runs (joint, bone) of the training command."""
    return skeleton_cache, {"joint": joint_run, "bone": bone_run}


def report(
    folder: Path, names: list[str], labels: np.ndarray, scores: np.ndarray, stream: str, order: np.ndarray | None = None
) -> Path:
    """A score file as `mmcl test` writes it, rows in `order` (files need not agree on order)."""
    order = np.arange(len(names)) if order is None else order
    s = SplitScores(scores[order].astype(np.float32), labels[order], order.astype(np.int64), [names[i] for i in order])
    write_report(folder, s, [f"class {c}" for c in range(scores.shape[1])], {"stream": stream, "split": "test"})
    return folder / "scores.npz"


def synthetic(n: int = 40, c: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    names = [f"S001C001P{i:03d}R001A001" for i in range(n)]
    labels = rng.integers(0, c, n)
    return names, labels, rng


def invoke(*args: str):
    """The command as `mmcl ensemble` runs it; a refused input surfaces as its MMCLError."""
    return CliRunner().invoke(cli.ensemble, list(args))


# --------------------------------------------------------------------------- real runs


def test_real_run_outputs_fuse_by_name(runs, tmp_path):
    """Our .npz, CTR-GCN's .pkl (labels from its companion npz) and a work dir all load; the
    fusion equals the sum of the files' scores matched by sample name."""
    _, work = runs
    out = tmp_path / "ensemble.json"
    result = invoke(
        str(work["joint"] / "eval" / "scores.npz"), str(work["bone"] / "eval" / "scores.pkl"), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    joint = np.load(work["joint"] / "eval" / "scores.npz")
    with open(work["bone"] / "eval" / "scores.pkl", "rb") as f:
        bone = pickle.load(f)
    fused = np.stack([joint["scores"][i] + bone[str(n)] for i, n in enumerate(joint["names"])])
    assert summary["num_samples"] == len(joint["names"])
    assert [s["stream"] for s in summary["streams"]] == ["joint", "bone"]
    assert summary["weights"] == [1.0, 1.0] and summary["weights_source"].startswith("equal")
    assert summary["fused"]["top1"] == pytest.approx(topk_accuracy(fused, joint["labels"], 1))
    assert summary["fused"]["top5"] == pytest.approx(topk_accuracy(fused, joint["labels"], 5))
    assert summary["streams"][0]["top1"] == pytest.approx(topk_accuracy(joint["scores"], joint["labels"], 1))
    assert "fused" in result.output and "top-1" in result.output

    by_dir = run_ensemble([work["joint"], work["bone"]])  # work dirs resolve to eval/scores.npz
    np.testing.assert_allclose(by_dir.fused, fused, rtol=1e-6)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_score_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    """A pickle names what it calls on load; score pickles may only hold arrays and plain values."""
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "scores.pkl"
    evil.write_bytes(pickle.dumps({"S001C001P001R001A001": _RunsCode()}))
    result = invoke(str(evil), str(evil))
    assert isinstance(result.exception, MMCLError)
    assert str(evil) in str(result.exception) and "refusing posix.system" in str(result.exception)
    assert not (tmp_path / "pwned").exists()


def test_pickle_without_labels_needs_the_cache(runs, tmp_path):
    cache, work = runs
    lone = tmp_path / "bone.pkl"
    shutil.copy(work["bone"] / "eval" / "scores.pkl", lone)  # no scores.npz beside it
    with pytest.raises(MMCLError, match="--cache"):
        run_ensemble([lone])
    result = run_ensemble([lone], cache=cache.parent)
    assert result.summary["labels_from"].endswith("skeletons.h5")
    reference = run_ensemble([work["bone"] / "eval" / "scores.npz"])
    assert result.summary["fused"] == reference.summary["fused"]


def test_pipeline_spelling_points_to_the_eval_folder(runs):
    _, work = runs
    result = invoke(str(work["joint"] / "scores.npz"), str(work["bone"]))
    assert isinstance(result.exception, MMCLError)
    with pytest.raises(MMCLError, match="did you mean .*eval/scores.npz"):
        load_score_file(work["joint"] / "scores.npz")


# --------------------------------------------------------------------------- weights


def test_four_streams_get_2_2_1_1_by_their_metadata_in_any_order(tmp_path):
    names, labels, rng = synthetic()
    scores = {s: rng.normal(size=(len(names), 6)) for s in FOUR}
    given = ("bone-motion", "joint", "joint-motion", "bone")  # not the canonical order
    paths = [report(tmp_path / s, names, labels, scores[s], s, rng.permutation(len(names))) for s in given]
    result = run_ensemble(paths)
    assert result.summary["weights"] == [1.0, 2.0, 1.0, 2.0]
    assert "2:2:1:1" in result.summary["weights_source"]
    expected = 2 * scores["joint"] + 2 * scores["bone"] + scores["joint-motion"] + scores["bone-motion"]
    np.testing.assert_allclose(
        result.fused[np.argsort(result.aligned.names)], expected[np.argsort(names)], rtol=1e-5, atol=1e-5
    )
    assert result.summary["fused"]["top1"] == pytest.approx(topk_accuracy(expected, labels, 1))


def test_other_stream_sets_get_equal_weights_and_weights_override(tmp_path):
    names, labels, rng = synthetic()
    a, b, c = (rng.normal(size=(len(names), 6)) for _ in range(3))
    paths = [report(tmp_path / s, names, labels, x, s) for s, x in zip(("joint", "bone", "joint-motion"), (a, b, c))]
    assert default_weights(["joint", "bone", "joint-motion"]).values == (1.0, 1.0, 1.0)
    assert default_weights(["joint", "joint", "bone", "bone-motion"]).values == (1.0,) * 4
    result = run_ensemble(paths, weights="3,0,1")
    np.testing.assert_allclose(result.fused, 3 * a + c, rtol=1e-5, atol=1e-5)
    assert result.summary["weights_source"] == "given (--weights)"
    with pytest.raises(MMCLError, match="2 weights for 3 score files"):
        run_ensemble(paths, weights="1,2")
    with pytest.raises(MMCLError, match="non-negative"):
        run_ensemble(paths, weights="1,-1,1")


# --------------------------------------------------------------------------- refusals


def test_files_covering_other_samples_are_refused(tmp_path):
    names, labels, rng = synthetic()
    full = report(tmp_path / "a", names, labels, rng.normal(size=(len(names), 6)), "joint")
    short = report(
        tmp_path / "b", names, labels, rng.normal(size=(len(names), 6)), "bone", order=np.arange(len(names) - 2)
    )
    with pytest.raises(MMCLError, match=r"lacks 2 of its samples \(e.g. S001C001P038"):
        run_ensemble([full, short])
    result = invoke(str(full), str(short), "--out", str(tmp_path / "e.json"))
    assert isinstance(result.exception, MMCLError) and not (tmp_path / "e.json").exists()


def test_disagreeing_labels_and_class_counts_are_refused(tmp_path):
    names, labels, rng = synthetic()
    a = report(tmp_path / "a", names, labels, rng.normal(size=(len(names), 6)), "joint")
    b = report(tmp_path / "b", names, (labels + 1) % 6, rng.normal(size=(len(names), 6)), "bone")
    with pytest.raises(MMCLError, match="disagree on the label"):
        run_ensemble([a, b])
    c = report(tmp_path / "c", names, labels, rng.normal(size=(len(names), 7)), "bone")
    with pytest.raises(MMCLError, match="7 classes"):
        run_ensemble([a, c])


def test_probabilities_over_clips_and_logits_are_not_summed(tmp_path):
    """A stream tested on several clips (pyskl's recipes: 10) holds mean probabilities, not logits."""
    names, labels, rng = synthetic()
    logits = report(tmp_path / "a", names, labels, rng.normal(size=(len(names), 6)), "joint")
    probabilities = rng.dirichlet(np.ones(6), len(names))
    clips = tmp_path / "b"
    write_report(
        clips,
        SplitScores(probabilities.astype(np.float32), labels, np.arange(len(names)), names),
        [f"class {c}" for c in range(6)],
        {"stream": "bone", "split": "test", "test_clips": 10},
    )
    assert load_score_file(clips).kind == "mean probabilities over 10 test clips"
    with pytest.raises(MMCLError, match="holds mean probabilities over 10 test clips and .* logits"):
        run_ensemble([logits, clips / "scores.pkl"])
    assert run_ensemble([clips, clips]).summary["num_samples"] == len(names)  # of one kind: fused


# --------------------------------------------------------------------------- weight search


def informative(labels: np.ndarray, c: int, rng, accuracy: float) -> np.ndarray:
    """Scores whose argmax is right for about `accuracy` of the samples."""
    right = rng.random(len(labels)) < accuracy
    target = np.where(right, labels, (labels + 1 + rng.integers(0, c - 1, len(labels))) % c)
    return np.eye(c)[target] + rng.normal(0, 0.1, (len(labels), c))


def test_search_picks_weights_on_validation_and_applies_them_to_test(tmp_path):
    """Stream 'bone' is loud noise: equal weights drown the good joint stream, the search drops it."""
    c = 6
    splits = {}
    for split, seed in (("val", 1), ("test", 2)):
        names, labels, rng = synthetic(n=60, c=c, seed=seed)
        names = [f"{split}-{n}" for n in names]
        good, noise = informative(labels, c, rng, 0.8), rng.normal(0, 10, (len(names), c))
        paths = [report(tmp_path / split / s, names, labels, x, s) for s, x in (("joint", good), ("bone", noise))]
        splits[split] = (labels, good, noise, paths)
    out = tmp_path / "searched.json"
    val_paths, test_paths = splits["val"][3], splits["test"][3]
    result = invoke(
        *map(str, test_paths), "--search", str(val_paths[1]), "--search", str(val_paths[0]), "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    weights = summary["weights"]
    assert weights[0] > 0 and weights[1] == 0  # paired by stream although given in another order
    search = summary["search"]
    assert search["pairing"] == "by stream"
    labels, good, noise, _ = splits["val"]
    assert search["val_top1"] == pytest.approx(topk_accuracy(good, labels, 1))
    assert search["val_top1"] > search["start_val_top1"]
    labels, good, noise, _ = splits["test"]
    assert summary["fused"]["top1"] == pytest.approx(topk_accuracy(fuse(np.stack([good, noise]), weights), labels, 1))
    assert "validation" in summary["weights_source"] and "chosen on validation" in result.output


def test_search_keeps_the_starting_weights_on_ties(tmp_path):
    names, labels, rng = synthetic()
    same = informative(labels, 6, rng, 1.0)
    paths = [report(tmp_path / s, names, labels, same, s) for s in ("joint", "bone")]
    val = align([load_score_file(p) for p in paths])
    chosen, result = search_weights(val, Weights((1.0, 1.0), "equal"))
    assert chosen.values == (1.0, 1.0) and result.val_top1 == 1.0


def test_search_refuses_test_samples_and_explicit_weights(tmp_path):
    names, labels, rng = synthetic()
    paths = [report(tmp_path / s, names, labels, rng.normal(size=(len(names), 6)), s) for s in ("joint", "bone")]
    with pytest.raises(MMCLError, match="never on the test split"):
        run_ensemble(paths, search=paths)
    with pytest.raises(MMCLError, match="exclude each other"):
        run_ensemble(paths, weights="1,1", search=paths)
    with pytest.raises(MMCLError, match="1 validation score files for 2"):
        run_ensemble(paths, search=paths[:1])


def test_the_mmcl_group_exposes_the_command():
    from mmcl.cli import mmcl

    result = CliRunner().invoke(mmcl, ["ensemble", "--help"])
    assert result.exit_code == 0 and "--search" in result.output and ensemble.name == "ensemble"


def test_default_output_is_a_new_run_folder_never_the_current_one(runs, tmp_path, monkeypatch):
    """It once wrote ensemble.json into the current folder, over the previous one."""
    _, work = runs
    monkeypatch.chdir(tmp_path)
    files = [str(work["joint"] / "eval" / "scores.npz"), str(work["bone"] / "eval" / "scores.npz")]
    assert invoke(*files).exit_code == 0 and invoke(*files).exit_code == 0
    assert not (tmp_path / "ensemble.json").exists()
    folders = sorted(p for p in (tmp_path / "runs").iterdir() if not p.is_symlink())
    assert len(folders) == 2 and all((f / "ensemble.json").is_file() for f in folders)
    assert (tmp_path / "runs" / "ensemble-latest").resolve() == folders[-1].resolve()
