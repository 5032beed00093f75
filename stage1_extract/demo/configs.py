"""The demo generator's settings per layout (NTU RGB+D, UTD-MHAD, SYSU-3D-HOI), checked on creation."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import MMCLError
from shared.dataset_spec import DatasetSpec
from shared.registry import DEMO, SYSU, UTD_MHAD

from .kinect import Imperfections
from .motions import MOTIONS

NTU_CAMERA_AZIMUTHS = {1: -45.0, 2: 0.0, 3: 45.0}


@dataclass(frozen=True)
class DemoConfig:
    subjects: tuple[int, ...] = (1, 2, 3, 4, 5)
    cameras: tuple[int, ...] = (1, 2, 3)
    replications: tuple[int, ...] = (1, 2)
    actions: tuple[int, ...] = tuple(c.action for c in DEMO.classes)
    frames: tuple[int, int] = (40, 80)  # clip length range, inclusive
    video_size: tuple[int, int] = (320, 180)
    fps: int = 30
    seed: int = 0
    faults: Imperfections = field(default_factory=Imperfections)

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        if unknown := sorted(set(self.cameras) - set(NTU_CAMERA_AZIMUTHS)):
            raise MMCLError(f"demo cameras are 1, 2 and 3; got {unknown}")
        if unknown := sorted(set(self.actions) - set(MOTIONS)):
            raise MMCLError(f"no demo motion for NTU actions {unknown}; known: {sorted(MOTIONS)}")
        if any(not 1 <= v <= 999 for v in (*self.subjects, *self.replications)):
            raise MMCLError("subjects and replications must be in 1..999 (3-digit NTU names)")

    @staticmethod
    def setup_of(subject: int) -> int:
        """Odd subjects are filmed in setup 1, even ones in setup 2."""
        return 1 if subject % 2 else 2

    def name(self, subject: int, camera: int, replication: int, action: int) -> str:
        return f"S{self.setup_of(subject):03d}C{camera:03d}P{subject:03d}R{replication:03d}A{action:03d}"

    def takes(self) -> list[tuple[int, int, int]]:
        """(subject, replication, action): one performance, filmed by every camera."""
        return [(s, r, a) for s in self.subjects for r in self.replications for a in self.actions]

    def names(self) -> list[str]:
        return sorted(self.name(s, c, r, a) for s, r, a in self.takes() for c in self.cameras)


def _with_motion(spec: DatasetSpec) -> tuple[int, ...]:
    """The dataset's actions whose NTU counterpart has a demo motion."""
    return tuple(c.action for c in spec.classes if c.ntu_id in MOTIONS)


def ntu_id(spec: DatasetSpec, action: int) -> int:
    return spec.classes[spec.label_of_action(action)].ntu_id


@dataclass(frozen=True)
class UtdConfig:
    subjects: tuple[int, ...] = tuple(range(1, 9))  # the release's eight subjects
    trials: tuple[int, ...] = (1,)
    actions: tuple[int, ...] = _with_motion(UTD_MHAD)
    frames: tuple[int, int] = (40, 80)
    video_size: tuple[int, int] = (640, 480)
    fps: int = 30
    seed: int = 0

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        _check_motions(UTD_MHAD, self.actions, "UTD-MHAD actions")


@dataclass(frozen=True)
class SysuConfig:
    """subjects: the release's 40, so that both halves of the xsub protocol (1-20 train, 21-40 test)
    are populated; per_subject: how many of the activities each subject performs, in rotation so
    that every activity has about as many subjects in each half (None: every activity, as the
    release). One take each keeps the default demo at 40 short clips."""

    subjects: tuple[int, ...] = tuple(range(1, 41))
    activities: tuple[int, ...] = _with_motion(SYSU)
    per_subject: int | None = 1
    frames: tuple[int, int] = (40, 80)
    image_size: tuple[int, int] = (640, 480)
    fps: int = 30
    seed: int = 0
    jpeg_quality: int = 85

    def __post_init__(self) -> None:
        _check_frames(self.frames)
        _check_motions(SYSU, self.activities, "SYSU activities")
        if self.per_subject is not None and not 1 <= self.per_subject <= len(self.activities):
            raise MMCLError(
                f"per_subject must be 1..{len(self.activities)} (the activities) or None, got {self.per_subject}"
            )

    def takes(self) -> list[tuple[int, int]]:
        """(subject, activity) of every performance."""
        n = len(self.activities)
        per = n if self.per_subject is None else self.per_subject
        return [(s, self.activities[(i * per + j) % n]) for i, s in enumerate(self.subjects) for j in range(per)]


def _check_frames(frames: tuple[int, int]) -> None:
    lo, hi = frames
    if not 12 <= lo <= hi:
        raise MMCLError(f"frames must be a range (lo, hi) with 12 <= lo <= hi, got {frames}")


def _check_motions(spec: DatasetSpec, actions: tuple[int, ...], what: str) -> None:
    known = _with_motion(spec)
    if bad := [a for a in actions if a not in known]:
        raise MMCLError(f"no demo motion for {what} {bad}; known: {list(known)}")
