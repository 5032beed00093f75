"""Stage 1's test fixtures, each built once a session: the demo dataset, its skeleton file, the
demo models loaded, and one uninterrupted reference extraction."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from stage1_demo import ACTIONS, CORRUPT, MISSING, OPTIONS, SHORT, SUBJECTS, config, new_cache, specs

from shared.registry import DEMO
from stage1_extract.extract import extract_features
from stage1_extract.featurize import load_models
from stage1_extract.summary import Summary


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from stage1_extract.demo.dataset import generate_demo

    root = tmp_path_factory.mktemp("data") / "demo"
    generate_demo(
        root,
        subjects=SUBJECTS,
        cameras=(1,),
        replications=(1,),
        actions=ACTIONS,
        frames=(20, 30),
        workers=1,
        progress=False,
    )
    videos = root / "nturgb+d_rgb"
    (videos / f"{MISSING}_rgb.avi").unlink()
    corrupt = videos / f"{CORRUPT}_rgb.avi"
    corrupt.write_bytes(corrupt.read_bytes()[:600])
    with av.open(str(videos / f"{SHORT}_rgb.avi"), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        for value in (40, 80, 120):
            frame = np.full((180, 320, 3), value, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return root


@pytest.fixture(scope="session")
def skeleton_file(demo_root, tmp_path_factory) -> Path:
    from stage1_extract.skeleton_cache import build_skeleton_cache

    return build_skeleton_cache(DEMO, demo_root, tmp_path_factory.mktemp("skeletons"), workers=1, progress=False)


@pytest.fixture(scope="session")
def models(demo_models):
    """The demo models loaded once for the in-process runs."""
    return load_models(specs(demo_models), OPTIONS["batch_size"])


@pytest.fixture(scope="session")
def reference(demo_root, demo_models, models, skeleton_file, tmp_path_factory) -> Summary:
    """One uninterrupted run (with --save-images), compared against by the other tests."""
    out = new_cache(tmp_path_factory.mktemp("reference"), skeleton_file)
    return extract_features(config(out, demo_root, demo_models, save_images=True, workers=1), models)
