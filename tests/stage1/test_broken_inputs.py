"""Stage 1 on hostile inputs (a demo subset): absurd skeleton coordinates, unreadable skeleton files, cut
and corrupted videos. Each is recorded with its reason and the run exits 1; none gives a 'valid' sample."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.cache_schema import SKELETON_FILE, SkeletonCache
from shared.errors import CacheError, MMCLError
from shared.registry import DEMO
from stage1_extract.extract import ExtractConfig, extract_features
from stage1_extract.model_specs import ModelSpecs
from stage1_extract.temporal_image import TemporalImageConfig

IMAGE = TemporalImageConfig(frames=5, size=(280, 112))
CLI_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Six demo samples: two with one absurd coordinate, two with damaged videos, two intact."""
    from stage1_extract.demo.dataset import generate_demo

    root = tmp_path_factory.mktemp("hostile") / "demo"
    generate_demo(
        root,
        subjects=(1, 2, 3),
        cameras=(1,),
        replications=(1,),
        actions=(8, 23),
        frames=(60, 66),
        workers=1,
        progress=False,
    )
    names = sorted(p.stem for p in (root / "nturgb+d_skeletons").glob("*.skeleton"))
    roles = dict(zip(("inf", "huge", "cut", "garbled"), names))
    for role, token in (("inf", "Infinity"), ("huge", "1E+30")):
        path = root / "nturgb+d_skeletons" / f"{roles[role]}.skeleton"
        lines = path.read_bytes().decode().split("\r\n")
        joint_lines = [i for i, line in enumerate(lines) if len(line.split()) == 12]
        i = joint_lines[len(joint_lines) // 2]  # one coordinate of one joint, mid-sequence
        lines[i] = " ".join([token] + lines[i].split()[1:])
        path.write_bytes("\r\n".join(lines).encode())
    videos = root / "nturgb+d_rgb"
    cut = videos / f"{roles['cut']}_rgb.avi"
    cut.write_bytes(cut.read_bytes()[: int(0.4 * cut.stat().st_size)])
    garbled = videos / f"{roles['garbled']}_rgb.avi"
    data = np.frombuffer(garbled.read_bytes(), np.uint8).copy()
    data[len(data) // 2 - 3000 : len(data) // 2 + 3000][::64] ^= 0xFF  # ~6 KB in the middle corrupted
    garbled.write_bytes(data.tobytes())
    return root, roles


def test_absurd_coordinates_are_recorded_and_the_run_exits_1(hostile_root, tmp_path):
    root, roles = hostile_root
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "stage1_extract.cli",
            "--dataset",
            "demo",
            "--root",
            str(root),
            "--out",
            str(tmp_path),
            "--skeletons-only",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=CLI_ENV,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    cache = SkeletonCache(tmp_path / "demo")
    assert len(cache) == 4 and roles["inf"] not in cache.names and roles["huge"] not in cache.names
    failures = {name: reason for name, _, reason in cache.failures}
    assert set(failures) == {roles["inf"], roles["huge"]}
    assert f"{roles['inf']}.skeleton: frame " in failures[roles["inf"]] and "joint " in failures[roles["inf"]]
    assert "x = inf is not finite" in failures[roles["inf"]]
    assert "x = 1e+30 is beyond 100 m" in failures[roles["huge"]]
    for name in cache.names:  # what was kept is finite
        assert np.isfinite(cache.sample(cache.names.index(name))["joints"]).all()


def test_no_readable_skeleton_is_an_error_and_installs_no_cache(tmp_path):
    from stage1_extract.skeleton_cache import build_skeleton_cache

    folder = tmp_path / "demo" / "nturgb+d_skeletons"
    folder.mkdir(parents=True)
    for name in ("S001C001P001R001A008", "S001C001P001R001A023"):
        (folder / f"{name}.skeleton").write_text("not a skeleton file\n")
    out = tmp_path / "cache"
    with pytest.raises(
        CacheError,
        match=r"skeletons.h5: no sample could be read \(2 failed: "
        r"S001C001P001R001A008: .*A008.skeleton",
    ):
        build_skeleton_cache(DEMO, tmp_path / "demo", out, workers=1, progress=False)
    assert not (out / "demo" / SKELETON_FILE).exists()
    assert not [p for p in (out / "demo").iterdir() if p.name.startswith(".skeletons.h5.tmp")]


def test_cut_and_corrupted_videos_are_marked_invalid_with_the_reason(hostile_root, demo_models, tmp_path):
    root, roles = hostile_root
    models = ModelSpecs(mllm=str(demo_models["mllm"]), backend="transformers", device="cpu")
    summary = extract_features(
        ExtractConfig(
            dataset="demo",
            root=root,
            out=tmp_path,
            models=models,
            image=IMAGE,
            batch_size=2,
            chunk_size=4,
            workers=0,
            progress=False,
        )
    )
    block = summary.block
    broken = {roles["cut"], roles["garbled"]}
    valid = dict(zip(block.name, block.rgb_valid))
    assert len(valid) == 4 and {n for n, ok in valid.items() if not ok} == broken
    assert all(ok for n, ok in zip(block.name, block.text_valid) if n not in broken)
    reasons = {name: (stage, reason) for name, stage, reason in block.failures}
    assert set(reasons) == broken
    assert reasons[roles["cut"]][0] == "video" and "damaged or cut video: decodes" in reasons[roles["cut"]][1]
    assert "decode error" in reasons[roles["garbled"]][1]
    assert summary.exit_code == 1  # the skeletons left out of the cache fail the run as well
    assert "2 samples left out of the skeleton cache" in summary.report()


@pytest.mark.parametrize(
    "models, words",
    [
        (ModelSpecs(mllm="./models/Qwen2.5-VL-7B-Instrct"), "MLLM './models/Qwen2.5-VL-7B-Instrct': no such directory"),
        (ModelSpecs(rgb_encoder="lite0-weights.pth"), "RGB encoder 'lite0-weights.pth': no such file"),
        (ModelSpecs(text_encoder="/opt/models/minilm/"), "Text encoder '/opt/models/minilm/': no such directory"),
    ],
)
def test_a_missing_model_path_is_reported_before_the_skeleton_cache_is_built(hostile_root, tmp_path, models, words):
    root, _ = hostile_root
    with pytest.raises(MMCLError, match=re.escape(words)):
        extract_features(ExtractConfig(dataset="demo", root=root, out=tmp_path, models=models, progress=False))
    assert not (tmp_path / "demo" / SKELETON_FILE).exists()
