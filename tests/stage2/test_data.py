"""Stage 2's data pipeline: batched augmentation against the reference feeder, streams, dataset."""

from __future__ import annotations

import pickle
import shutil

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shared.cache_schema import FEATURES_DIR, FeatureFile, SkeletonCache
from shared.errors import CacheError, MMCLError
from shared.layouts import KINECT_V1, NTU25
from shared.registry import NW_UCLA
from stage2_train.data.dataset import JointSource, SkeletonDataset, collate, make_splits
from stage2_train.data.features import load_features
from stage2_train.data.transforms import (
    AugmentConfig,
    BatchAugment,
    InputPipeline,
    center_crops,
    crop_resize,
    random_crops,
    rotate,
    rotation_matrices,
    translated_crop_resize,
    ucla_frame_indices,
)
from shared.normalization import translate_to_origin_torch
from stage2_train.data.streams import STREAMS, canonical_stream, make_stream, to_model_input
from stage2_cache import write_tiny_cache, write_tiny_features

# --------------------------------------------------------------------------- the reference, per sample
# CTR-GCN's feeders/tools.py on one (C, T, V, M) sample, with the random draws passed in.


def ref_crop_resize(data: np.ndarray, start: int, size: int, window: int) -> np.ndarray:
    c, _, v, m = data.shape
    x = torch.tensor(data[:, start : start + size], dtype=torch.float)
    x = x.permute(0, 2, 3, 1).contiguous().view(c * v * m, size)[None, None]
    x = F.interpolate(x, size=(c * v * m, window), mode="bilinear", align_corners=False).squeeze()
    return x.contiguous().view(c, v, m, window).permute(0, 3, 1, 2).numpy()


def ref_rot_matrix(rot: np.ndarray) -> np.ndarray:
    """tools._rot for one angle triple."""
    (c0, c1, c2), (s0, s1, s2) = np.cos(rot), np.sin(rot)
    rx = np.array([[1, 0, 0], [0, c0, s0], [0, -s0, c0]])
    ry = np.array([[c1, 0, -s1], [0, 1, 0], [s1, 0, c1]])
    rz = np.array([[c2, s2, 0], [-s2, c2, 0], [0, 0, 1]])
    return rz @ ry @ rx


def ref_rotate(data: np.ndarray, rot: np.ndarray) -> np.ndarray:
    c, t, v, m = data.shape
    x = data.transpose(1, 0, 2, 3).reshape(t, c, v * m)
    return (ref_rot_matrix(rot) @ x).reshape(t, c, v, m).transpose(1, 0, 2, 3)


def to_ctvm(x: torch.Tensor) -> np.ndarray:
    """(T, M, V, C) -> the reference's (C, T, V, M)."""
    return x.permute(3, 0, 2, 1).numpy()


def padded_batch(lengths, m=2, v=25, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(len(lengths), max(lengths), m, v, 3)
    for i, t in enumerate(lengths):
        x[i, :t] = torch.randn(t, m, v, 3, generator=g)
    return x, torch.tensor(lengths)


# --------------------------------------------------------------------------- crops


def test_random_crop_ratio_and_bounds():
    lengths = torch.randint(1, 300, (4000,), generator=torch.Generator().manual_seed(0))
    start, size = random_crops(lengths, 0.5, 1.0, min_frames=16, generator=torch.Generator().manual_seed(1))
    assert (start >= 0).all() and (start + size <= lengths).all()
    assert (size >= torch.minimum(lengths, torch.tensor(16))).all() and (size <= lengths).all()
    long = lengths >= 64  # where the 16-frame floor does not bind, size = floor(p * L), p in [0.5, 1]
    ratio = size[long] / lengths[long]
    assert ratio.min() >= 0.5 - 1 / 64 and ratio.max() <= 1.0
    assert ratio.min() < 0.52 and ratio.max() > 0.98  # the whole range is used
    assert len(set(start[lengths > 200].tolist())) > 50  # and many positions


def test_center_crop_matches_reference():
    lengths = torch.arange(1, 301)
    start, size = center_crops(lengths, 0.95)
    bias = [int((1 - 0.95) * t / 2) for t in range(1, 301)]
    assert start.tolist() == bias and (size == lengths - 2 * start).all()


def test_crop_resize_equals_reference_per_sample():
    lengths = [37, 5, 64, 120, 1]
    x, lens = padded_batch(lengths)
    start, size = torch.tensor([3, 0, 0, 30, 0]), torch.tensor([30, 5, 64, 70, 1])
    out = crop_resize(x, start, size, 64)
    assert out.shape == (5, 64, 2, 25, 3)
    for i, t in enumerate(lengths):
        ref = ref_crop_resize(to_ctvm(x[i, :t]), int(start[i]), int(size[i]), 64)
        np.testing.assert_allclose(to_ctvm(out[i]), ref, atol=1e-5)


def test_translation_on_the_window_equals_shared_normalisation_first():
    """The fast path must equal translate_to_origin_torch on the full batch, then crop + resize."""
    x, lens = padded_batch([50, 50, 50, 30, 50, 12])
    x[0, :5, 0] = 0  # actor 1 appears late: the origin comes from frame 5
    x[1, 10:20, 1] = 0  # actor 2 leaves for a while: those frames stay zero
    x[2, :, 1] = 0  # one-person sample
    x[4] = 0  # nothing at all
    start, size = random_crops(lens, 0.5, 1.0, 8, torch.Generator().manual_seed(0))
    fast = translated_crop_resize(x, NTU25.center, start, size, 16)
    slow = crop_resize(translate_to_origin_torch(x, NTU25.center), start, size, 16)
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-6)
    assert (fast[2, :, 1] == 0).all() and (fast[4] == 0).all()


# --------------------------------------------------------------------------- rotation


def test_rotation_matches_reference_and_preserves_bone_lengths():
    angles = torch.rand(8, 3, dtype=torch.float64) * 0.6 - 0.3
    r = rotation_matrices(angles)
    for a, m in zip(angles.numpy(), r.numpy()):
        np.testing.assert_allclose(m, ref_rot_matrix(a), atol=1e-12)
    x, _ = padded_batch([20] * 8)
    y = rotate(x, r.float())
    parents = torch.as_tensor(NTU25.parents)
    lengths_before = (x - x[..., parents, :]).norm(dim=-1)
    lengths_after = (y - y[..., parents, :]).norm(dim=-1)
    torch.testing.assert_close(lengths_after, lengths_before, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(y, x)


# --------------------------------------------------------------------------- the whole augmentation


def test_train_augmentation_equals_reference_on_one_sample():
    """BatchAugment draws crop, then angles; the same draws through the reference agree."""
    cfg = AugmentConfig(window=32)
    x, lens = padded_batch([90, 40, 75], seed=3)
    out = BatchAugment(cfg, train=True, center=NTU25.center)(x, lens, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    start, size = random_crops(lens, *cfg.crop, min_frames=cfg.window, generator=g)
    angles = (2 * torch.rand((3, 3), generator=g) - 1) * cfg.rotate
    i, t = 0, 90
    sample = x[i, :t].numpy()
    centred = sample - sample[0, 0, NTU25.center]  # seq_translation: actor 1's first frame
    ref = ref_crop_resize(to_ctvm(torch.from_numpy(centred)), int(start[i]), int(size[i]), cfg.window)
    ref = ref_rotate(ref, angles[i].double().numpy())
    np.testing.assert_allclose(to_ctvm(out[i]), ref, atol=1e-4)


def test_test_time_is_deterministic_and_independent_of_the_batch():
    cfg = AugmentConfig(window=16)
    x, lens = padded_batch([50, 20, 33])
    aug = BatchAugment(cfg, train=False, center=NTU25.center)
    a, b = aug(x, lens), aug(x, lens)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    alone = aug(x[1:2, :20], lens[1:2])  # no padding, batch of one
    torch.testing.assert_close(alone[0], a[1], rtol=0, atol=1e-6)
    train = BatchAugment(cfg, train=True, center=NTU25.center)
    assert not torch.allclose(
        train(x, lens, torch.Generator().manual_seed(0)), train(x, lens, torch.Generator().manual_seed(1))
    )


def test_absent_second_person_stays_zero_and_one_person_layout_stays_m1():
    x, lens = padded_batch([30, 30])
    x[:, :, 1] = 0
    out = BatchAugment(AugmentConfig(window=16), train=True, center=1)(x, lens, torch.Generator().manual_seed(0))
    assert (out[:, :, 1] == 0).all() and (out[:, :, 0] != 0).any()
    y, lens1 = padded_batch([30, 12], m=1, v=20)
    out1 = InputPipeline(AugmentConfig(window=16), False, "bone", KINECT_V1)({"joints": y, "length": lens1})
    assert out1.shape == (2, 3, 16, 20, 1)


def test_ucla_view_path():
    cfg = AugmentConfig(window=52, kind="ucla-view")
    x, lens = padded_batch([30, 80, 7], m=1, v=20)
    test = BatchAugment(cfg, train=False, center=KINECT_V1.center)(x, lens)
    assert test.shape == (3, 52, 1, 20, 3)
    assert test.min() >= -1 - 1e-6 and test.max() <= 1 + 1e-6
    # test frames: np.linspace(0, L - 1, 52).astype(int), as the reference
    idx = ucla_frame_indices(lens, 52, train=False)
    for row, t in zip(idx, lens.tolist()):
        assert row.tolist() == np.linspace(0, t - 1, 52).astype(int).tolist()
    train_idx = ucla_frame_indices(lens, 52, train=True, generator=torch.Generator().manual_seed(0))
    assert (train_idx.diff(dim=1) >= 0).all() and (train_idx < lens[:, None]).all() and (train_idx >= 0).all()
    g = torch.Generator().manual_seed(0)
    train = BatchAugment(cfg, train=True, center=KINECT_V1.center)(x, lens, g)
    assert train.shape == (3, 52, 1, 20, 3) and not torch.allclose(train, test)
    # min-max per axis over the whole (valid) sequence: each sample spans exactly [-1, 1] at test
    full = BatchAugment(AugmentConfig(window=200, kind="ucla-view"), train=False, center=1)(x[:1, :30], lens[:1])
    torch.testing.assert_close(full.flatten(0, -2).amin(0), -torch.ones(3), atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- streams


def test_streams_match_reference_loops():
    x, _ = padded_batch([10, 10])
    bone = make_stream(x, "bone", NTU25)
    ref = torch.zeros_like(x)
    for v1, v2 in NTU25.bone_pairs_1based:  # the reference feeder's loop
        ref[..., v1 - 1, :] = x[..., v1 - 1, :] - x[..., v2 - 1, :]
    torch.testing.assert_close(bone, ref)
    assert (bone[..., 20, :] == 0).all()  # SpineShoulder is the root, paired with itself
    jm = make_stream(x, "joint_motion", NTU25)
    torch.testing.assert_close(jm[:, :-1], x[:, 1:] - x[:, :-1])
    assert (jm[:, -1] == 0).all()
    torch.testing.assert_close(make_stream(x, "bone-motion", NTU25)[:, :-1], bone[:, 1:] - bone[:, :-1])
    assert to_model_input(x).shape == (2, 3, 10, 25, 2)
    assert [canonical_stream(s) for s in ("Joint", "bone_motion")] == ["joint", "bone-motion"]
    with pytest.raises(MMCLError, match="unknown stream"):
        canonical_stream("velocity")
    assert len(STREAMS) == 4


# --------------------------------------------------------------------------- dataset over a cache


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_cache(tmp_path_factory.mktemp("cache"), invalid_rgb=[0, 4], invalid_text=[2])


def test_dataset_collate_and_features(tiny):
    cache = SkeletonCache(tiny)
    feats = load_features(tiny, None, cache, need_rgb=True, need_text=True)
    assert feats.rgb_dim == 12 and feats.text_dim == 2 + 8
    assert not feats.rgb_valid[0] and not feats.rgb[0].any() and np.isfinite(feats.text).all()
    mem, disk = JointSource(cache, in_memory=True), JointSource(cache, in_memory=False)
    disk = pickle.loads(pickle.dumps(disk))  # what a worker process receives
    ds = SkeletonDataset(mem, np.array([0, 2, 5]), cache.labels, feats, repeat=2)
    assert len(ds) == 6 and ds[3]["index"] == 0
    np.testing.assert_array_equal(disk[5], mem[5])
    batch = collate([ds[i] for i in range(3)])
    t = [len(mem[r]) for r in (0, 2, 5)]
    assert batch["joints"].shape == (3, max(t), 2, 25, 3) and batch["length"].tolist() == t
    assert (batch["joints"][1, t[1] :] == 0).all()
    assert batch["rgb_valid"].tolist() == [False, True, True] and batch["text_valid"].tolist() == [True, False, True]
    assert batch["label"].tolist() == cache.labels[[0, 2, 5]].tolist()


def test_shared_and_lazy_sources_give_the_same_batches(tiny):
    """The frames in memory, read by forked workers that share one array, and read per sample
    from the file give the same training batches, epoch after epoch."""
    from stage2_train.data.dataset import make_loader

    cache = SkeletonCache(tiny)
    rows = cache.split_indices("xsub", True)

    def epochs(in_memory, workers):
        loader = make_loader(
            SkeletonDataset(JointSource(cache, in_memory), rows, cache.labels), 4, True, workers, seed=5
        )
        out = []
        for epoch in range(2):
            loader.sampler.set_epoch(epoch)
            out += [(b["joints"], b["length"], b["index"]) for b in loader]
        return out

    shared, lazy = epochs(True, 2), epochs(False, 0)
    assert len(shared) == len(lazy) == 2 * (len(rows) // 4)
    for (a, la, ia), (b, lb, ib) in zip(shared, lazy):
        assert torch.equal(a, b) and torch.equal(la, lb) and torch.equal(ia, ib)
    assert not torch.equal(shared[0][2], shared[len(shared) // 2][2])  # epochs differ


def unreadable(path, *datasets: str) -> None:
    """Replace datasets of an HDF5 file by ones whose data lives in a missing file: any read of
    them fails, so a reader that works never read them."""
    with h5py.File(path, "a") as f:
        for name in datasets:
            shape, dtype = f[name].shape, f[name].dtype
            del f[name]
            f.create_dataset(name, shape, dtype, external=[(str(path) + ".missing", 0, h5py.h5f.UNLIMITED)])


def test_feature_sets_with_and_without_per_frame_embeddings_train_the_same(tiny, tmp_path):
    """Stage 1 writes rgb/frames as N x 0 x D unless --frame-features; files of both kinds (and
    those written before the flag, with K frames) give training the same arrays."""
    folder = tmp_path / "ds"
    shutil.copytree(tiny, folder)
    shutil.rmtree(folder / FEATURES_DIR)
    cache = SkeletonCache(folder)
    loaded = {}
    for k in (0, 2):
        path = write_tiny_features(folder, frames=k, name=f"k{k}")
        assert FeatureFile(path, cache).block.rgb_frames.shape[1] == k
        loaded[k] = load_features(folder, f"k{k}", cache, need_rgb=True, need_text=True)
    np.testing.assert_array_equal(loaded[0].rgb, loaded[2].rgb)
    np.testing.assert_array_equal(loaded[0].text, loaded[2].text)
    assert loaded[0].rgb_dim == 12


def test_training_reads_only_the_feature_arrays_it_uses(tiny, tmp_path):
    folder = tmp_path / "ds"
    shutil.copytree(tiny, folder)
    path = folder / FEATURES_DIR / "tiny.h5"
    unreadable(path, "rgb/frames")
    with pytest.raises(CacheError, match="rgb/frames cannot be read"):  # the whole-file reader reads rgb/frames
        FeatureFile(path)
    cache = SkeletonCache(folder)
    both = load_features(folder, None, cache, need_rgb=True, need_text=True)
    expected = load_features(tiny, None, cache, need_rgb=True, need_text=True)
    np.testing.assert_array_equal(both.rgb, expected.rgb)
    np.testing.assert_array_equal(both.text, expected.text)
    unreadable(path, "text/embedding", "text/yes_prob")  # FAM alone never reads the text side
    fam = load_features(folder, None, cache, need_rgb=True, need_text=False)
    assert fam.text is None and np.array_equal(fam.rgb, expected.rgb)
    with pytest.raises(CacheError, match="text/.* cannot be read"):
        load_features(folder, None, cache, need_rgb=True, need_text=True)


def test_validation_split_is_seeded_stratified_and_disjoint(tmp_path):
    folder = write_tiny_cache(tmp_path, subjects=(1, 2, 3), per_cell=2, features=False)
    cache = SkeletonCache(folder)
    s = make_splits(cache, "xsub", val_split=0.25, seed=4)
    assert make_splits(cache, "xsub", 0.25, seed=4).val.tolist() == s.val.tolist()
    assert not set(s.val) & set(s.train) and not set(s.val) & set(s.test)
    assert len(s.val) + len(s.train) == 36 and len(s.test) == 18
    assert np.bincount(cache.labels[s.val]).tolist() == [1] * 9  # one of four per class
    with pytest.raises(MMCLError, match="no protocol"):
        make_splits(cache, "xset")


def test_nw_ucla_cache_keeps_one_person(tmp_path):
    folder = write_tiny_cache(tmp_path, spec=NW_UCLA, subjects=(1, 3), features=False)
    cache = SkeletonCache(folder)
    ds = SkeletonDataset(JointSource(cache), cache.split_indices("view3", True), cache.labels)
    batch = collate([ds[i] for i in range(4)])
    assert batch["joints"].shape[2:] == (1, 20, 3)
