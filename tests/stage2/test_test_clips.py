"""pyskl's 10-clip test (issue #24): the `test_clips` setting, the clip sampler against pyskl's rule,
the averaged class probabilities `mmcl test` reports, the recipes that set it, and the one-window
warning of `predict` and `export`."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner
import stage2_cache
from stage2_run import ONE_EPOCH, SKELETON_ONLY, train

from shared.cache_schema import SkeletonCache
from shared.layouts import get_layout
from shared.normalization import translate_to_origin
from stage2_train import cli
from stage2_train.data.augment_config import AugmentConfig
from stage2_train.data.clip_sampling import TEST_SEED, ClipsInput, clip_indices, evaluation_input
from stage2_train.data.dataset import JointSource, collate
from stage2_train.data.streams import make_stream, to_model_input
from stage2_train.data.transforms import InputPipeline
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.training.config import TrainConfig, resolve_config

# --------------------------------------------------------------------------- the sampler


def pyskl_test_indices(num_frames: int, clip_len: int, num_clips: int, seed: int = 255) -> np.ndarray:
    """pyskl's UniformSampleFrames in test mode (p_interval 1), written out as plainly as its code
    reads: numpy's global generator seeded once per sample, all clips concatenated, then mod T."""
    np.random.seed(seed)
    all_inds = []
    for i in range(num_clips):
        old = num_frames
        ratio = np.random.rand() * (1 - 1) + 1
        t = int(ratio * num_frames)
        off = np.random.randint(old - t + 1)
        if t < clip_len:
            start = i if t < num_clips else i * t // num_clips
            inds = np.arange(start, start + clip_len)
        elif clip_len <= t < clip_len * 2:
            basic = np.arange(clip_len)
            inds = np.random.choice(clip_len + 1, t - clip_len, replace=False)
            offset = np.zeros(clip_len + 1, dtype=np.int64)
            offset[inds] = 1
            inds = basic + np.cumsum(offset)[:-1]
        else:
            bids = np.array([j * t // clip_len for j in range(clip_len + 1)])
            inds = bids[:clip_len] + np.random.randint(np.diff(bids))
        all_inds.append(inds + off)
    return np.mod(np.concatenate(all_inds), num_frames)


@pytest.mark.parametrize("clips", [1, 3, 10])
@pytest.mark.parametrize("frames", [1, 4, 9, 10, 37, 99, 100, 101, 150, 199, 200, 201, 300])
def test_clip_indices_follow_pyskls_rule(frames, clips):
    """Short (looping; fewer frames than clips and more), equal, between one and two windows, long."""
    state = np.random.get_state()
    try:
        expected = pyskl_test_indices(frames, 100, clips).reshape(clips, 100)
    finally:
        np.random.set_state(state)
    got = clip_indices(frames, 100, clips)
    assert got.shape == (clips, 100) and got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert got.min() >= 0 and got.max() < frames


def test_clip_indices_are_seeded_with_255_and_leave_numpys_generator_alone():
    assert TEST_SEED == 255
    clip_indices.cache_clear()
    state = np.random.get_state()[1].copy()
    first = clip_indices(150, 100, 10).copy()
    clip_indices.cache_clear()
    np.testing.assert_array_equal(clip_indices(150, 100, 10), first)  # recomputed: the same
    assert np.array_equal(np.random.get_state()[1], state)
    assert not np.array_equal(clip_indices(150, 100, 10, seed=0), first)  # the seed matters
    # the clips differ from one another (a random draw per clip) and each is sorted
    assert len({tuple(c) for c in first}) == 10 and all((np.diff(c) >= 0).all() for c in first)
    with pytest.raises(ValueError):
        clip_indices(150, 100, 10)[0, 0] = 1  # cached: read-only


# --------------------------------------------------------------------------- the setting


def test_test_clips_is_a_setting_that_defaults_to_one():
    cfg = TrainConfig()
    assert cfg.get("test_clips") == 1 and cfg.to_dict()["test_clips"] == 1
    assert TrainConfig.from_dict({**cfg.to_dict(), "test_clips": 10}).augment.test_clips == 10
    old = {k: v for k, v in cfg.to_dict().items() if k != "test_clips"}  # a config saved before it
    assert TrainConfig.from_dict(old).augment.test_clips == 1


@pytest.mark.parametrize("recipe,clips", [("stgcnpp", 10), ("protogcn", 10), ("ctrgcn", 1), ("hdgcn", 1), ("mmcl", 1)])
def test_the_recipes_carry_their_test_clips(recipe, clips):
    for dataset in ("ntu60", "ntu120"):
        cfg = resolve_config(dataset, {}, {"recipe": recipe})
        assert cfg.augment.test_clips == clips
    assert resolve_config("ntu60", {}, {"recipe": recipe, "test_clips": 3}).augment.test_clips == 3  # a flag wins


def batch_of(lengths, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    items = [
        {"joints": rng.normal(size=(n, 2, 25, 3)).astype(np.float32), "label": 0, "index": i}
        for i, n in enumerate(lengths)
    ]
    return collate(items)


def test_one_clip_is_the_single_window_input_bit_for_bit():
    layout = get_layout("ntu25")
    aug = AugmentConfig(window=16)
    one = evaluation_input(aug, "bone", layout)
    assert type(one) is InputPipeline
    batch = batch_of([30, 11, 50])
    before = InputPipeline(aug, False, "bone", layout)(batch)
    assert torch.equal(one(batch), before)
    logits = torch.randn(3, 5)
    assert one.scores(logits) is logits  # the logits as they are
    many = evaluation_input(AugmentConfig(window=16, test_clips=4), "bone", layout)
    assert isinstance(many, ClipsInput) and many(batch).shape == (3 * 4, *before.shape[1:])


def test_clip_scores_are_the_mean_probability_of_each_samples_clips():
    logits = torch.randn(2 * 3, 7)
    got = ClipsInput(AugmentConfig(), 3, "joint", get_layout("ntu25")).scores(logits)
    expected = torch.stack([logits[3 * n : 3 * n + 3].softmax(-1).mean(0) for n in range(2)])
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-7)
    assert torch.allclose(got.sum(-1), torch.ones(2))


# --------------------------------------------------------------------------- mmcl test, predict, export


def jumpy_motion(label: int, t: int, rng: np.random.Generator, num_person: int, num_joints: int) -> np.ndarray:
    """Every frame a new random pose: clips of other frames give other scores."""
    return (rng.normal(0, 1, size=(t, num_person, num_joints, 3)) + [0, 0, 3]).astype(np.float32)


@pytest.fixture(scope="module")
def clips_run(tmp_path_factory):
    """(cache, work dir): a one-epoch joint run on 12-frame windows tested on 3 clips, on a cache
    whose frames are independent random poses, and `soft.pt`: its checkpoint with the classifier
    scaled down. Trained logits reach several hundred, where every clip's softmax is one-hot and
    averaging probabilities cannot be told from averaging logits; scaled, it can."""
    root = tmp_path_factory.mktemp("clips")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage2_cache, "motion", jumpy_motion)
        cache = stage2_cache.write_tiny_cache(root / "cache", features=False)
    work = train(cache, root / "run", *SKELETON_ONLY, *ONE_EPOCH, "--test-clips", "3")
    ckpt = load_checkpoint(work / "last.pt")
    fc = [k for k in ckpt.model if k.endswith("fc.weight") or k.endswith("fc.bias")]
    assert fc, "no classifier found"
    scaled = {k: v * SOFT if k in fc else v for k, v in ckpt.model.items()}
    dataclasses.replace(ckpt, model=scaled).save(work / "soft.pt")
    return cache, work


SOFT = 0.1  # the scaled logits: up to about 80, differing between clips by up to about 3


def manual_clip_logits(cache, checkpoint, clips: int) -> tuple[list[str], torch.Tensor]:
    """Each test sample, clip by clip: translated, its frames at pyskl's indices, the network's
    logits: (N, clips, C)."""
    ckpt = load_checkpoint(checkpoint)
    model = ckpt.build_model().skeleton_model().eval()
    spec = ckpt.spec.input
    layout = get_layout(spec.layout)
    skeletons = SkeletonCache(cache)
    rows = skeletons.split_indices(ckpt.spec.protocol, train=False)
    source = JointSource(skeletons, in_memory=True)
    names, scores = [], []
    for row in rows:
        joints = translate_to_origin(source[int(row)], layout.center)
        idx = pyskl_test_indices(len(joints), spec.window, clips).reshape(clips, spec.window)
        logits = []
        for clip in idx:
            x = to_model_input(make_stream(torch.from_numpy(joints[clip])[None], spec.stream, layout))
            with torch.no_grad():
                logits.append(model(x)[0])
        names.append(skeletons.names[int(row)])
        scores.append(torch.stack(logits))
    return names, torch.stack(scores)


def test_mmcl_test_averages_the_probabilities_of_the_clips(clips_run, tmp_path):
    cache, work = clips_run
    assert "test_clips: 3" in (work / "config.yaml").read_text()
    assert load_checkpoint(work / "last.pt").spec.input.test_clips == 3
    out = tmp_path / "eval"
    result = CliRunner().invoke(cli.test, ["--checkpoint", str(work / "soft.pt"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names, logits = manual_clip_logits(cache, work / "soft.pt", 3)
    expected = logits.softmax(-1).mean(1).numpy()
    scores = np.load(out / "scores.npz")
    assert list(scores["names"]) == names
    np.testing.assert_allclose(scores["scores"], expected, rtol=0, atol=1e-6)
    # the test can tell: averaged logits, or one clip, would differ by far more than the tolerance
    assert np.abs(logits.mean(1).softmax(-1).numpy() - expected).max() > 1e-3
    assert np.abs(logits[:, 0].softmax(-1).numpy() - expected).max() > 1e-3
    # the evaluation at the end of training averaged the clips too
    names, logits = manual_clip_logits(cache, work / "last.pt", 3)
    trained = np.load(work / "eval" / "scores.npz")
    assert list(trained["names"]) == names
    np.testing.assert_allclose(trained["scores"], logits.softmax(-1).mean(1).numpy(), rtol=0, atol=1e-5)
    # --test-clips 1 on the same checkpoint: the single window's logits, not probabilities
    one = tmp_path / "one"
    result = CliRunner().invoke(
        cli.test, ["--checkpoint", str(work / "soft.pt"), "--out", str(one), "--test-clips", "1"]
    )
    assert result.exit_code == 0, result.output
    assert not np.allclose(np.load(one / "scores.npz")["scores"].sum(1), 1)


def test_predict_and_export_warn_once_that_they_score_one_window(clips_run, joint_run, tmp_path):
    cache, work = clips_run
    for checkpoint, warned in ((work / "last.pt", True), (joint_run / "last.pt", False)):
        result = CliRunner().invoke(
            cli.predict, ["--checkpoint", str(checkpoint), "--cache", str(cache), "--sample", "0"]
        )
        assert result.exit_code == 0, result.output
        lines = [line for line in result.stderr.splitlines() if "test_clips" in line]
        assert len(lines) == (1 if warned else 0), result.stderr
        assert "test_clips" not in result.stdout
        if warned:
            assert lines[0].startswith("warning:") and "3 clips" in lines[0]
    result = CliRunner().invoke(
        cli.export, ["--checkpoint", str(work / "last.pt"), "--out", str(tmp_path / "x"), "--format", "torchscript"]
    )
    assert result.exit_code == 0, result.output
    assert sum("test_clips 3" in line for line in result.stderr.splitlines()) == 1
