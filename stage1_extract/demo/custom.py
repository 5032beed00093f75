"""A worked example of a dataset of one's own (shared.custom_dataset): the demo's UTD-MHAD-layout
clips written as a user's own pose tool might write them, with its own class names and split.

    root/manifest.yaml          name my-actions, layout kinect_v1, six classes with NTU ids, xsub
    root/samples.csv            name,label,skeleton,video,subject,xsub
    root/skeletons/<name>.npz   joints (T, 20, 3) metres, color_xy (T, 20, 2) pixels of 640x480
    root/videos/<name>.avi
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shared.readers import read_sample

from .dataset import generate_utd

NAME = "my-actions"
# UTD-MHAD action -> (our name for it, its NTU RGB+D 120 action id: zero-shot maps through it)
CLASSES = {
    3: ("wave", 23),
    6: ("cross arms", 96),
    7: ("basketball shot", 63),
    24: ("stand up", 9),
    25: ("sit down", 8),
    27: ("squat", 80),
}
MANIFEST = """\
# A dataset of one's own, for `mmcl extract --dataset custom --manifest manifest.yaml`.
# Paths are relative to this file; README "Your own data" explains every key.
name: {name}
title: My actions (generated example)
layout: kinect_v1        # the joint order of the arrays: Kinect v1 SDK, 20 joints
persons: 1
color_resolution: [640, 480]
classes:
{classes}
protocols: [xsub]        # samples.csv has one train/test column per protocol
samples: samples.csv
"""


def generate_custom(
    root: str | Path,
    *,
    subjects: Sequence[int] = (1, 2, 3, 4),
    trials: Sequence[int] = (1, 2),
    frames: tuple[int, int] = (40, 80),
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Write the example under `root`: odd subjects train (xsub), even ones test."""
    root = Path(root)
    for sub in ("skeletons", "videos"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_utd(
            tmp,
            subjects=subjects,
            trials=trials,
            actions=sorted(CLASSES),
            frames=frames,
            workers=workers,
            progress=progress,
            label="custom example (my-actions)",
        )
        for mat in sorted(Path(tmp, "Skeleton").glob("*_skeleton.mat")):
            utd_name = mat.name[: -len("_skeleton.mat")]
            action, subject, trial = (int(part[1:]) for part in utd_name.split("_"))
            label = CLASSES[action][0]
            name = f"p{subject:02d}_{label.replace(' ', '-')}_{trial}"
            sample = read_sample("utd-mhad", mat)  # (T, 1, 20, 3), Kinect v1 order
            np.savez(root / "skeletons" / f"{name}.npz", joints=sample.joints[:, 0], color_xy=sample.color_xy[:, 0])
            shutil.copy(Path(tmp, "RGB", f"{utd_name}_color.avi"), root / "videos" / f"{name}.avi")
            rows.append(
                {
                    "name": name,
                    "label": label,
                    "skeleton": f"skeletons/{name}.npz",
                    "video": f"videos/{name}.avi",
                    "subject": subject,
                    "xsub": "train" if subject % 2 else "test",
                }
            )
    rows.sort(key=lambda r: r["name"])
    with open(root / "samples.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    classes = "\n".join(f"  - {{name: {n}, ntu_id: {i}}}" for n, i in CLASSES.values())
    (root / "manifest.yaml").write_text(MANIFEST.format(name=NAME, classes=classes))
    return {"samples": len(rows), "manifest": str(root / "manifest.yaml")}
