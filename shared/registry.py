"""Dataset registry: classes, layouts, protocols, file naming and where files live under a root.

Everything here is data. Readers (`shared.readers`) and both stages look datasets up by name.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .dataset_spec import ClassInfo, DatasetSpec, Protocol
from .errors import MMCLError

NTU_COLOR_RESOLUTION = (1920, 1080)  # NTU colorX/colorY refer to the 1920x1080 RGB stream


def _ntu_class_names() -> list[str]:
    text = resources.files("shared.data").joinpath("ntu120_classes.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _ntu_classes(n: int) -> tuple[ClassInfo, ...]:
    return tuple(ClassInfo(i + 1, name, i + 1) for i, name in enumerate(_ntu_class_names()[:n]))


# laid out by hand, as a table: ruff format leaves it so
# fmt: off
NTU_XSUB60_TRAIN = frozenset(
    [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38])
NTU_XSUB120_TRAIN = NTU_XSUB60_TRAIN | frozenset(
    [45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86,
     89, 91, 92, 93, 94, 95, 97, 98, 100, 103])
NTU_NAME_REGEX = r"S(?P<setup>\d{3})C(?P<camera>\d{3})P(?P<subject>\d{3})R(?P<replication>\d{3})A(?P<action>\d{3})"
NTU_SKELETON_DIRS = ("nturgb+d_skeletons", "skeletons", ".")
NTU_VIDEO_DIRS = ("nturgb+d_rgb", "rgb", ".")

NTU60 = DatasetSpec(
    name="ntu60", title="NTU RGB+D 60", classes=_ntu_classes(60), layout_name="ntu25",
    num_person=2,
    protocols=(Protocol("xsub", "subject", NTU_XSUB60_TRAIN),
               Protocol("xview", "camera", frozenset([2, 3]))),
    name_regex=NTU_NAME_REGEX, skeleton_format="ntu", skeleton_dirs=NTU_SKELETON_DIRS,
    video_dirs=NTU_VIDEO_DIRS, video_pattern="{name}_rgb.avi",
    color_resolution=NTU_COLOR_RESOLUTION, missing_list="ntu60_missing_skeletons.txt",
    setups=frozenset(range(1, 18)),
)

NTU120 = DatasetSpec(
    name="ntu120", title="NTU RGB+D 120", classes=_ntu_classes(120), layout_name="ntu25",
    num_person=2,
    protocols=(Protocol("xsub", "subject", NTU_XSUB120_TRAIN),
               Protocol("xset", "setup", frozenset(range(2, 33, 2)))),
    name_regex=NTU_NAME_REGEX, skeleton_format="ntu", skeleton_dirs=NTU_SKELETON_DIRS,
    video_dirs=NTU_VIDEO_DIRS, video_pattern="{name}_rgb.avi",
    color_resolution=NTU_COLOR_RESOLUTION, missing_list="ntu120_missing_skeletons.txt",
    setups=frozenset(range(1, 33)),
)

NW_UCLA = DatasetSpec(
    name="nw-ucla", title="Northwestern-UCLA Multiview Action 3D",
    classes=(
        ClassInfo(1, "pick up with one hand", 6), ClassInfo(2, "pick up with two hands", 6),
        ClassInfo(3, "drop trash", 5), ClassInfo(4, "walk around", None),
        ClassInfo(5, "sit down", 8), ClassInfo(6, "stand up", 9), ClassInfo(8, "donning", 14),
        ClassInfo(9, "doffing", 15), ClassInfo(11, "throw", 7), ClassInfo(12, "carry", None),
    ),
    layout_name="kinect_v1", num_person=1,
    protocols=(Protocol("view3", "camera", frozenset([1, 2])),),
    name_regex=r"a(?P<action>\d{2})_s(?P<subject>\d{2})_e(?P<replication>\d{2})_v(?P<camera>\d{2})",
    skeleton_format="ucla_json", skeleton_dirs=("all_sqe", "skeletons", "."),
    video_dirs=("videos", "rgb", "."), video_pattern="{name}",
    num_frames_hint=201,
)

UTD_CLASSES = (
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave",
    "two hand front clap", "right arm throw", "cross arms in the chest", "basketball shoot",
    "right hand draw x", "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)", "draw triangle", "bowling (right hand)",
    "front boxing", "baseball swing from right", "tennis right hand forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "right hand knock on door",
    "right hand catch an object", "right hand pick up and throw", "jogging in place",
    "walking in place", "sit to stand", "stand to sit", "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
)
# The six UTD-MHAD actions the MMCL paper evaluates zero-shot, and their NTU counterparts.
UTD_TO_NTU = {3: 23, 6: 96, 7: 63, 24: 9, 25: 8, 27: 80}

UTD_MHAD = DatasetSpec(
    name="utd-mhad", title="UTD-MHAD",
    classes=tuple(ClassInfo(i + 1, n, UTD_TO_NTU.get(i + 1)) for i, n in enumerate(UTD_CLASSES)),
    layout_name="kinect_v1", num_person=1,
    # Zero-shot target: every sample is a test sample.
    protocols=(Protocol("zeroshot", "subject", frozenset()),),
    name_regex=r"a(?P<action>\d+)_s(?P<subject>\d+)_t(?P<replication>\d+)",
    skeleton_format="utd_mat", skeleton_dirs=("Skeleton", "skeleton", "."),
    video_dirs=("RGB", "rgb", "."), video_pattern="{name}_color.avi",
    color_resolution=(640, 480),
)

# Our own SYSU-3D-HOI mapping and protocol (the paper publishes neither); see README.
SYSU_CLASSES = (
    ClassInfo(1, "drinking", 1), ClassInfo(2, "pouring", None),
    ClassInfo(3, "calling phone", 28), ClassInfo(4, "playing phone", 29),
    ClassInfo(5, "wearing backpacks", 87), ClassInfo(6, "packing backpacks", 89),
    ClassInfo(7, "sitting chair", 8), ClassInfo(8, "moving chair", 92),
    ClassInfo(9, "taking out wallet", 25), ClassInfo(10, "taking from wallet", None),
    ClassInfo(11, "mopping", None), ClassInfo(12, "sweeping", None),
)

SYSU = DatasetSpec(
    name="sysu", title="SYSU-3D-HOI",
    classes=SYSU_CLASSES, layout_name="kinect_v1", num_person=1,
    # Cross-subject: the first 20 of the 40 subjects train (fine-tuning), the rest test.
    protocols=(Protocol("xsub", "subject", frozenset(range(1, 21))),),
    name_regex=r"s(?P<subject>\d{2})_a(?P<action>\d{2})",
    skeleton_format="sysu_mat", skeleton_dirs=("3DvideoNorm", "."),
    video_dirs=("3DvideoNorm", "."), video_pattern="{name}",
    color_resolution=(640, 480),
)

# The generated demo: real NTU action ids (the six that zero-shot UTD-MHAD maps to, two whose
# video shows an object the skeleton lacks, and one two-person action), in the NTU file layout.
DEMO_ACTIONS = (1, 8, 9, 23, 28, 58, 63, 80, 96)
DEMO = DatasetSpec(
    name="demo", title="generated demo (NTU layout)",
    classes=tuple(ClassInfo(a, _ntu_class_names()[a - 1], a) for a in DEMO_ACTIONS),
    layout_name="ntu25", num_person=2,
    protocols=(Protocol("xsub", "subject", NTU_XSUB60_TRAIN),
               Protocol("xview", "camera", frozenset([2, 3]))),
    name_regex=NTU_NAME_REGEX, skeleton_format="ntu", skeleton_dirs=NTU_SKELETON_DIRS,
    video_dirs=NTU_VIDEO_DIRS, video_pattern="{name}_rgb.avi",
    color_resolution=NTU_COLOR_RESOLUTION,
)
# fmt: on

DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (NTU60, NTU120, NW_UCLA, UTD_MHAD, SYSU, DEMO)}

DATA_ENV = "MMCL_DATA"  # folder holding one sub-folder per dataset


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise MMCLError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None


def default_root(name: str) -> Path:
    """$MMCL_DATA/<dataset> when MMCL_DATA is set, else data/<dataset> under the current folder."""
    base = os.environ.get(DATA_ENV)
    return Path(base) / name if base else Path("data") / name


def find_dir(root: Path, candidates: tuple[str, ...], what: str, spec: DatasetSpec) -> Path:
    """The first candidate folder under `root` that exists, or a clear error naming them."""
    root = Path(root)
    if not root.is_dir():
        hint = f" (the default: pass --root, or set {DATA_ENV} to a folder holding '{spec.name}/')"
        raise MMCLError(f"{spec.title} root {root} does not exist{hint}")
    for c in candidates:
        path = root / c
        if path.is_dir() and (c != "." or any(path.iterdir())):
            return path
    raise MMCLError(
        f"no {what} folder under {root}: expected one of {', '.join(str(root / c) for c in candidates if c != '.')}"
    )
