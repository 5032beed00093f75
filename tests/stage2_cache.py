"""A tiny generated cache for stage 2's tests: demo-layout skeletons with class-dependent motion
and a matching feature set, written with shared.cache_schema exactly as stage 1 would."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shared.cache_schema import (
    FEATURES_DIR,
    SKELETON_FILE,
    FeatureBlock,
    FeatureHeader,
    SkeletonCache,
    SkeletonCacheWriter,
    write_feature_file,
)
from shared.dataset_spec import DatasetSpec, SampleMeta
from shared.registry import DEMO

RGB_DIM, QUESTIONS, TEXT_DIM = 12, ["is a person sitting?", "is a hand raised?"], 8


def motion(label: int, t: int, rng: np.random.Generator, num_person: int, num_joints: int) -> np.ndarray:
    """(t, M, V, 3) metres: a standing body swaying, one joint waving at a class-specific rate."""
    base = rng.normal(0, 0.3, size=(1, 1, num_joints, 3)) + np.array([0.2, 0.1, 3.0])
    phase = np.linspace(0, 2 * np.pi * (1 + label % 3), t)[:, None]
    joints = np.repeat(base, t, axis=0).repeat(num_person, axis=1).astype(np.float64)
    joints[:, 0, 7 + label % 4, :] += 0.3 * np.concatenate([np.sin(phase), np.cos(phase), 0 * phase], 1)
    joints += rng.normal(0, 0.01, size=joints.shape)
    if num_person > 1 and label % 2 == 0:
        joints[:, 1] = 0  # one-person class: the second actor is absent
    return joints.astype(np.float32)


def write_tiny_cache(
    root: Path,
    spec: DatasetSpec = DEMO,
    subjects=(1, 2, 3),
    per_cell: int = 1,
    frames=(20, 40),
    features: bool = True,
    invalid_rgb=(),
    invalid_text=(),
    seed: int = 0,
) -> Path:
    """root/<dataset>/skeletons.h5 (+ features/tiny.h5); returns the dataset directory.

    Demo: subjects 1, 2 train and 3 tests under xsub. `invalid_*` are rows without features.
    """
    rng = np.random.default_rng(seed)
    folder = root / spec.name
    with SkeletonCacheWriter(folder / SKELETON_FILE, spec, "/generated") as w:
        for s in subjects:
            for c in spec.classes:
                for r in range(per_cell):
                    meta = _meta(spec, c.action, s, r)
                    t = int(rng.integers(*frames))
                    joints = motion(spec.label_of_action(c.action), t, rng, spec.num_person, spec.layout.num_joints)
                    w.append(meta, joints, np.arange(t, dtype=np.int32))
    if features:
        write_tiny_features(folder, invalid_rgb, invalid_text, seed)
    return folder


def _meta(spec: DatasetSpec, action: int, subject: int, r: int) -> SampleMeta:
    if spec.name == "nw-ucla":
        return SampleMeta(
            f"a{action:02d}_s{subject:02d}_e{r:02d}_v{subject:02d}", action, subject, camera=subject, replication=r
        )
    name = f"S001C{subject:03d}P{subject:03d}R{r + 1:03d}A{action:03d}"
    return spec.parse_name(name)


def write_tiny_features(
    folder: Path,
    invalid_rgb=(),
    invalid_text=(),
    seed: int = 0,
    frames: int = 2,
    name: str = "tiny",
    garbage: float | None = None,
) -> Path:
    """A feature set over the skeleton cache in `folder`; `frames`: K of rgb/frames (0: written without
    --frame-features, as stage 1 does by default; 2: as every file before that flag). `garbage`: what
    the invalid rows' RGB embedding (+garbage) and text embedding (-garbage) hold, written with the
    file (its checksums cover it) rather than edited in afterwards."""
    cache = SkeletonCache(folder)
    rng = np.random.default_rng(seed + 1)
    n, c = len(cache), int(cache.labels.max()) + 1
    onehot = np.eye(max(c, RGB_DIM))[cache.labels][:, :RGB_DIM]
    rgb_valid, text_valid = np.ones(n, bool), np.ones(n, bool)
    rgb_valid[list(invalid_rgb)] = False
    text_valid[list(invalid_text)] = False
    yes = rng.uniform(0, 1, (n, len(QUESTIONS))).astype(np.float32)
    yes[list(invalid_text)] = np.nan
    rgb_pooled = (onehot + rng.normal(0, 0.1, (n, RGB_DIM))).astype(np.float16)
    text_embedding = rng.normal(0, 1, (n, TEXT_DIM)).astype(np.float16)
    if garbage is not None:
        rgb_pooled[list(invalid_rgb)] = garbage
        text_embedding[list(invalid_text)] = -garbage
    block = FeatureBlock(
        index=np.arange(n),
        name=list(cache.names),
        rgb_valid=rgb_valid,
        rgb_pooled=rgb_pooled,
        rgb_frames=np.zeros((n, frames, RGB_DIM), np.float16),
        text_valid=text_valid,
        yes_prob=yes,
        description=["a person moves"] * n,
        text_embedding=text_embedding,
    )
    header = FeatureHeader(
        names_hash=cache.names_hash,
        num_samples=n,
        questions=QUESTIONS,
        class_names=[f"class {i}" for i in range(c)],
        class_embedding=np.zeros((c, TEXT_DIM), np.float16),
        attrs={"rgb_model": "tiny-test", "mllm": "none"},
    )
    path = folder / FEATURES_DIR / f"{name}.h5"
    write_feature_file(path, header, block, complete=True)
    return path
