"""The standard NTU cleaning, checked branch by branch against hand-built expectations and
against a slow, literal re-statement of CTR-GCN's preprocessing scripts; the translation to
the origin (numpy and batched torch); the parallel reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shared.errors import SkeletonFormatError
from shared.normalization import translate_to_origin, translate_to_origin_torch
from shared.ntu_cleaning import clean_ntu, read_and_clean
from shared.readers import read_many
from shared.ntu_skeleton import read_ntu_skeleton, write_ntu_skeleton

CENTER = 1  # NTU joint 2, spine middle


# ---------------------------------------------------------------------------------------------
# Reference: the CTR-GCN scripts' rules, stated literally (slow: dicts, per-line parsing)
# ---------------------------------------------------------------------------------------------


def reference_clean(path: Path):
    """(joints (T,2,25,3), colors (T,2,25,2), frame_index) as get_raw_skes_data ->
    get_raw_denoised_data -> remove_nan_frames produce them; colours are zero where absent
    (the reference fills them with NaN) and frame indices are tracked alongside."""
    lines = path.read_text().splitlines()
    num_frames, cur = int(lines[0]), 1
    bodies, valid, original = {}, -1, []
    for f in range(num_frames):
        num_bodies = int(lines[cur])
        cur += 1
        if num_bodies == 0:
            continue
        valid += 1
        original.append(f)
        for _ in range(num_bodies):
            body_id = lines[cur].split()[0]
            num_joints = int(lines[cur + 1])
            cur += 2
            joints = np.zeros((25, 3), np.float32)
            colors = np.zeros((25, 2), np.float32)
            for j in range(num_joints):
                fields = lines[cur].split()
                joints[j] = np.array(fields[:3], dtype=np.float32)
                colors[j] = np.array(fields[5:7], dtype=np.float32)
                cur += 1
            if body_id not in bodies:
                bodies[body_id] = {"joints": [joints], "colors": [colors], "interval": [valid]}
            else:
                body = bodies[body_id]
                body["joints"].append(joints)
                body["colors"].append(colors)
                body["interval"].append(body["interval"][-1] + 1)
    if valid < 0:
        raise SkeletonFormatError(path, "all frames missing")
    num_valid = valid + 1
    for body in bodies.values():
        body["joints"] = np.stack(body["joints"])
        body["colors"] = np.stack(body["colors"])
        body["motion"] = np.sum(np.var(body["joints"].reshape(-1, 3), axis=0))

    def place(actor_list, width):
        joints = np.zeros((num_valid, width, 25, 3), np.float32)
        colors = np.zeros((num_valid, width, 25, 2), np.float32)
        for m, body in actor_list:
            s, e = body["interval"][0], body["interval"][-1]
            joints[s : e + 1, m] = body["joints"]
            colors[s : e + 1, m] = body["colors"]
        return joints, colors

    if len(bodies) == 1:
        joints, colors = place([(0, next(iter(bodies.values())))], 1)
        index = np.array(original)
    else:
        for body_id in list(bodies):  # length
            if len(bodies[body_id]["interval"]) <= 11:
                del bodies[body_id]
        if len(bodies) != 1:  # spread
            for body_id in list(bodies):
                if len(bodies) == 1:
                    break
                body = bodies[body_id]
                valid_frames = []
                for i, frame in enumerate(body["joints"]):
                    x, y = frame[:, 0], frame[:, 1]
                    if float(x.max() - x.min()) <= 0.8 * float(y.max() - y.min()):
                        valid_frames.append(i)
                num_noise = len(body["interval"]) - len(valid_frames)
                if num_noise == 0:
                    continue
                if num_noise / float(len(body["interval"])) >= 0.69754:
                    del bodies[body_id]
                else:
                    motion = np.sum(np.var(body["joints"][valid_frames].reshape(-1, 3), axis=0))
                    body["motion"] = min(body["motion"], motion)
        ranked = sorted(bodies.items(), key=lambda kv: kv[1]["motion"], reverse=True)
        if not ranked:
            raise SkeletonFormatError(path, "no body left")
        if len(ranked) == 1:
            joints, colors = place([(0, ranked[0][1])], 1)
        else:
            actor1 = ranked[0][1]
            chosen = [(0, actor1)]
            start1, end1 = actor1["interval"][0], actor1["interval"][-1]
            start2, end2 = 0, 0
            for _, body in ranked[1:]:
                start, end = body["interval"][0], body["interval"][-1]
                if min(end1, end) - max(start1, start) <= 0:
                    chosen.append((0, body))
                    start1, end1 = min(start, start1), max(end, end1)
                elif min(end2, end) - max(start2, start) <= 0:
                    chosen.append((1, body))
                    start2, end2 = min(start, start2), max(end, end2)
            joints, colors = place(chosen, 2)
        keep = joints.reshape(num_valid, -1).sum(axis=1) != 0  # remove_missing_frames
        joints, colors, index = joints[keep], colors[keep], np.array(original)[keep]
    keep = [f for f in range(len(joints)) if not np.any(np.isnan(joints[f]))]  # remove_nan_frames
    joints, colors, index = joints[keep], colors[keep], index[keep]
    if joints.shape[1] == 1:
        joints = np.concatenate([joints, np.zeros_like(joints)], axis=1)
        colors = np.concatenate([colors, np.zeros_like(colors)], axis=1)
    return joints, colors, index


def reference_seq_translation(joints: np.ndarray) -> np.ndarray:
    """seq_translation on the reference's (T, 150) layout."""
    ske = joints.reshape(len(joints), 150).copy()
    missing1 = np.where(ske[:, :75].sum(axis=1) == 0)[0]
    missing2 = np.where(ske[:, 75:].sum(axis=1) == 0)[0]
    i = 0
    while i < len(ske) and not np.any(ske[i, :75] != 0):
        i += 1
    origin = np.copy(ske[i, 3:6])
    for f in range(len(ske)):
        ske[f] -= np.tile(origin, 50)
    ske[missing1, :75] = 0
    ske[missing2, 75:] = 0
    return ske.reshape(joints.shape)


# ---------------------------------------------------------------------------------------------
# Building files
# ---------------------------------------------------------------------------------------------

# A standing skeleton: x spread 0.6 m, y spread 1.6 m (the spread rule keeps it).
_TEMPLATE = np.stack([np.linspace(-0.3, 0.3, 25), np.linspace(-0.9, 0.7, 25)[::-1] * 1.0, np.zeros(25)], axis=-1)
_TEMPLATE = _TEMPLATE[np.random.default_rng(7).permutation(25)]


def body(t: int, depth: float, sway: float, lying=None, seed: int = 0) -> np.ndarray:
    """(t, 25, 3): the template at `depth` metres, swaying along x by `sway` metres; frames
    where `lying` is True have x and y swapped (the spread rule calls them noisy)."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(_TEMPLATE[None], t, axis=0)
    if lying is not None:
        frames[lying] = frames[lying][..., [1, 0, 2]]
    frames = frames + rng.normal(0, 0.005, frames.shape)
    frames[..., 0] += sway * np.sin(np.linspace(0, 4 * np.pi, t))[:, None]
    frames[..., 2] += depth
    return frames


def write_scene(path: Path, num_frames: int, tracks: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """tracks: (frames where the body is present, its (len(frames), 25, 3) joints)."""
    b = len(tracks)
    joints = np.zeros((num_frames, b, 25, 3))
    present = np.zeros((num_frames, b), bool)
    for k, (frames, data) in enumerate(tracks):
        joints[frames, k] = data
        present[frames, k] = True
    color = 960 + 500 * joints[..., :2] / np.maximum(joints[..., 2:], 1.0)
    write_ntu_skeleton(path, joints, color, body_ids=range(1, b + 1), present=present)
    return path


def as_read(x: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: float(f"{v:.7g}"))(x).astype(np.float32)


def check_against_reference(path: Path):
    clean = clean_ntu(read_ntu_skeleton(path))
    joints, colors, index = reference_clean(path)
    np.testing.assert_array_equal(clean.joints, joints)
    np.testing.assert_array_equal(clean.color_xy, colors)
    np.testing.assert_array_equal(clean.frame_index, index)
    assert clean.joints.dtype == np.float32 and clean.frame_index.dtype == np.int32
    return clean


def depth_of(clean, actor: int) -> np.ndarray:
    """Per frame, which body (by its depth, rounded) an actor slot holds; 0 where empty."""
    return np.round(clean.joints[:, actor, :, 2].mean(axis=1)).astype(int)


R = np.arange


# ---------------------------------------------------------------------------------------------
# Branches
# ---------------------------------------------------------------------------------------------


def test_single_body_missing_frames_dropped_and_indexed(tmp_path):
    frames = np.setdiff1d(R(30), [5, 6])
    a = body(28, depth=3, sway=0.2)
    clean = check_against_reference(write_scene(tmp_path / "s.skeleton", 30, [(frames, a)]))
    np.testing.assert_array_equal(clean.frame_index, frames)
    np.testing.assert_array_equal(clean.joints[:, 0], as_read(a))
    assert not clean.joints[:, 1].any() and not clean.color_xy[:, 1].any()


def test_single_body_is_kept_however_short(tmp_path):
    clean = check_against_reference(write_scene(tmp_path / "s.skeleton", 8, [(R(8), body(8, 3, 0.1))]))
    assert clean.num_frames == 8


def test_short_bodies_dropped_at_11_frames_kept_at_12(tmp_path):
    path = write_scene(
        tmp_path / "s.skeleton",
        40,
        [
            (R(40), body(40, depth=3, sway=0.5)),
            (R(10, 21), body(11, depth=5, sway=0.1)),  # 11 frames: noise
            (R(12), body(12, depth=4, sway=0.1)),  # 12 frames: kept, becomes actor 2
        ],
    )
    clean = check_against_reference(path)
    assert (depth_of(clean, 0) == 3).all()
    np.testing.assert_array_equal(depth_of(clean, 1), [4] * 12 + [0] * 28)


def test_spread_rule_drops_a_mostly_lying_body(tmp_path):
    lying = np.zeros(30, bool)
    lying[:21] = True  # 70 % >= 69.754 %
    path = write_scene(
        tmp_path / "s.skeleton",
        30,
        [
            (R(30), body(30, depth=3, sway=0.05)),
            (R(30), body(30, depth=4, sway=0.5, lying=lying)),
        ],
    )
    clean = check_against_reference(path)
    assert (depth_of(clean, 0) == 3).all() and not clean.joints[:, 1].any()


def test_spread_rule_keeps_a_body_below_the_ratio_and_lowers_its_motion(tmp_path):
    lying = np.zeros(30, bool)
    lying[::3] = True  # 33 % noisy: kept, motion from its upright frames only
    steady = body(30, depth=4, sway=0.0, lying=lying)
    steady[lying, :, 0] += 1.0  # lying a metre aside
    swaying = body(30, depth=3, sway=0.3)
    # Over all frames the partly lying body moves most; over its upright frames it moves least.
    assert np.var(steady.reshape(-1, 3), 0).sum() > np.var(swaying.reshape(-1, 3), 0).sum()
    clean = check_against_reference(write_scene(tmp_path / "s.skeleton", 30, [(R(30), steady), (R(30), swaying)]))
    assert (depth_of(clean, 0) == 3).all() and (depth_of(clean, 1) == 4).all()


def test_a_nan_frame_counts_as_noisy_for_the_spread_rule(tmp_path):
    lying = np.zeros(30, bool)
    lying[:20] = True  # 66.7 %: kept on its own; with one NaN frame 70 %: dropped
    b = body(30, depth=4, sway=0.5, lying=lying)
    b[25, 0, 0] = np.nan
    clean = check_against_reference(
        write_scene(tmp_path / "s.skeleton", 30, [(R(30), body(30, depth=3, sway=0.05)), (R(30), b)])
    )
    assert not clean.joints[:, 1].any() and clean.num_frames == 30


def test_three_bodies_two_most_moving_kept(tmp_path):
    path = write_scene(
        tmp_path / "s.skeleton",
        25,
        [
            (R(25), body(25, depth=5, sway=0.05)),
            (R(25), body(25, depth=3, sway=0.6)),
            (R(25), body(25, depth=4, sway=0.3)),
        ],
    )
    clean = check_against_reference(path)
    assert (depth_of(clean, 0) == 3).all() and (depth_of(clean, 1) == 4).all()


@pytest.mark.parametrize("d_start", [30, 29])  # after actor 1, or sharing its last frame
def test_non_overlapping_body_continues_actor_1(tmp_path, d_start):
    path = write_scene(
        tmp_path / "s.skeleton",
        60,
        [
            (R(30), body(30, depth=3, sway=0.8)),
            (R(60), body(60, depth=5, sway=0.05)),
            (R(d_start, 60), body(60 - d_start, depth=4, sway=0.4)),
        ],
    )
    clean = check_against_reference(path)
    # The later body overwrites a shared frame, as the reference writes it last.
    np.testing.assert_array_equal(depth_of(clean, 0), [3] * d_start + [4] * (60 - d_start))
    assert (depth_of(clean, 1) == 5).all()


def test_actor_2_interval_starts_at_frame_0_as_in_the_reference(tmp_path):
    path = write_scene(
        tmp_path / "s.skeleton",
        60,
        [
            (R(60), body(60, depth=3, sway=0.8)),
            (R(20, 60), body(40, depth=4, sway=0.4)),
            (R(16), body(16, depth=5, sway=0.05)),  # before actor 2 appears, yet "overlapping" it
        ],
    )
    clean = check_against_reference(path)
    assert (depth_of(clean, 0) == 3).all()
    np.testing.assert_array_equal(depth_of(clean, 1), [0] * 20 + [4] * 40)


def test_frames_only_noise_holds_are_dropped(tmp_path):
    frames_a = np.setdiff1d(R(30), [10])  # frame 10 holds no body at all
    path = write_scene(
        tmp_path / "s.skeleton",
        40,
        [
            (frames_a, body(29, depth=3, sway=0.3)),
            (R(30, 36), body(6, depth=4, sway=0.1)),  # noise, alone in frames 30-35
        ],
    )
    clean = check_against_reference(path)
    np.testing.assert_array_equal(clean.frame_index, frames_a)
    assert not clean.joints[:, 1].any()


def test_nan_frames_dropped(tmp_path):
    a = body(30, depth=3, sway=0.4)
    b = body(30, depth=4, sway=0.2)
    b[7, 3, 1] = np.nan
    clean = check_against_reference(write_scene(tmp_path / "s.skeleton", 30, [(R(30), a), (R(30), b)]))
    np.testing.assert_array_equal(clean.frame_index, np.setdiff1d(R(30), [7]))
    assert not np.isnan(clean.joints).any()


def test_returning_body_is_laid_on_consecutive_frames_as_the_reference_does(tmp_path):
    frames_b = np.concatenate([R(15), R(25, 40)])
    b = body(30, depth=4, sway=0.1)
    path = write_scene(tmp_path / "s.skeleton", 40, [(R(40), body(40, depth=3, sway=0.5)), (frames_b, b)])
    clean = check_against_reference(path)
    np.testing.assert_array_equal(clean.joints[:30, 1], as_read(b))
    assert not clean.joints[30:, 1].any()


def test_no_usable_body_is_a_clear_error(tmp_path):
    short = write_scene(tmp_path / "short.skeleton", 20, [(R(10), body(10, 3, 0.1)), (R(10, 20), body(10, 4, 0.1))])
    with pytest.raises(SkeletonFormatError, match=r"short\.skeleton: no body is tracked for more than 11"):
        read_and_clean(short)
    empty = tmp_path / "empty.skeleton"
    write_ntu_skeleton(empty, np.zeros((5, 1, 25, 3)), np.zeros((5, 1, 25, 2)), [1], present=np.zeros((5, 1), bool))
    with pytest.raises(SkeletonFormatError, match=r"empty\.skeleton: no body in any of its 5"):
        read_and_clean(empty)


def test_random_scenes_equal_the_reference(tmp_path):
    rng = np.random.default_rng(123)
    for n in range(25):
        t = int(rng.integers(15, 60))
        tracks = []
        for k in range(int(rng.integers(1, 5))):
            start = int(rng.integers(0, t - 5))
            frames = R(start, int(rng.integers(start + 3, t + 1)))
            if rng.random() < 0.3:  # a gap: the body leaves and comes back
                frames = np.delete(frames, R(len(frames) // 3, len(frames) // 2))
            lying = rng.random(len(frames)) < rng.choice([0.0, 0.5, 0.9])
            data = body(len(frames), depth=3 + k, sway=float(rng.uniform(0, 0.6)), lying=lying, seed=n * 10 + k)
            if rng.random() < 0.2:
                data[rng.integers(len(frames)), rng.integers(25), 0] = np.nan
            tracks.append((frames, data))
        path = write_scene(tmp_path / f"r{n}.skeleton", t, tracks)
        try:
            expected = reference_clean(path)
        except SkeletonFormatError:
            with pytest.raises(SkeletonFormatError):
                clean_ntu(read_ntu_skeleton(path))
            continue
        if len(expected[0]) == 0:
            with pytest.raises(SkeletonFormatError, match="no usable frame"):
                clean_ntu(read_ntu_skeleton(path))
            continue
        check_against_reference(path)


# ---------------------------------------------------------------------------------------------
# Translation to the origin
# ---------------------------------------------------------------------------------------------


def _two_actor_batch(rng) -> np.ndarray:
    x = rng.normal(0, 1, size=(5, 12, 2, 25, 3)).astype(np.float32)
    x[0, :3] = 0  # actor 1 starts late: the origin is frame 3's
    x[1, :, 1] = 0  # one actor
    x[2, 4:7, 1] = 0  # actor 2 absent for a while
    x[3, 9:] = 0  # padding
    x[4] = 0  # all padding
    return x


def test_translation_equals_the_reference_seq_translation():
    x = _two_actor_batch(np.random.default_rng(0))
    for sample in x[:4]:
        np.testing.assert_array_equal(translate_to_origin(sample, CENTER), reference_seq_translation(sample))
    out = translate_to_origin(x[0], CENTER)
    assert not out[:3].any() and not out[3, 0, CENTER].any()
    np.testing.assert_array_equal(translate_to_origin(x[4], CENTER), x[4])


def test_translation_any_number_of_actors_and_joints():
    x = np.random.default_rng(1).normal(size=(6, 1, 20, 3)).astype(np.float32)
    x[4:] = 0
    out = translate_to_origin(x, 1)
    np.testing.assert_allclose(out[:4], x[:4] - x[0, 0, 1], rtol=0, atol=0)
    assert not out[4:].any() and out.dtype == np.float32


def test_translation_torch_batch_equals_numpy():
    x = _two_actor_batch(np.random.default_rng(2))
    expected = np.stack([translate_to_origin(s, CENTER) for s in x])
    got = translate_to_origin_torch(torch.from_numpy(x), CENTER)
    np.testing.assert_array_equal(got.numpy(), expected)
    single = x[:, :, :1, :20]
    got = translate_to_origin_torch(torch.from_numpy(single), 0)
    expected = np.stack([translate_to_origin(s, 0) for s in single])
    np.testing.assert_array_equal(got.numpy(), expected)


# ---------------------------------------------------------------------------------------------
# Many files
# ---------------------------------------------------------------------------------------------


def test_parallel_read_keeps_order_and_reports_bad_files(tmp_path):
    paths = []
    for n in range(7):
        path = write_scene(
            tmp_path / f"f{n}.skeleton", 20 + n, [(R(20 + n), body(20 + n, depth=3, sway=0.1 * n, seed=n))]
        )
        paths.append(path)
    paths[3].write_text("2\n1\n")  # truncated
    paths.append(tmp_path / "absent.skeleton")
    results = list(read_many("ntu60", paths, workers=2, progress=False, chunksize=2))
    assert [r[0] for r in results] == [str(p) for p in paths]
    for path, clean, error in results:
        if path.endswith(("f3.skeleton", "absent.skeleton")):
            assert clean is None and error.startswith(path)
        else:
            assert error is None
            np.testing.assert_array_equal(clean.joints, read_and_clean(path).joints)
    assert "ends early" in results[3][2] and "cannot be read" in results[-1][2]
    inline = list(read_many("ntu60", paths, workers=0, progress=False))
    assert [r[2] for r in inline] == [r[2] for r in results]
