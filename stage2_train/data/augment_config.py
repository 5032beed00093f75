"""How training and test samples are cropped, resized and augmented (CTR-GCN's two feeders).

Torch-free, so the training config can nest it; `transforms.BatchAugment` applies it. The origin
every sequence is translated to is the input layout's centre joint, not a setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import MMCLError

from ..settings import NON_NEGATIVE, between, bound

AUGMENTS = ("crop-rotate", "ucla-view")  # CTR-GCN's NTU feeder, CTR-GCN's NW-UCLA feeder


@dataclass(frozen=True)
class AugmentConfig:
    window: int = field(default=64, metadata=between(2, 10_000, "frames per sample; NTU clips have at most 300"))  # frames per sample after crop + resize
    kind: str = "crop-rotate"  # or "ucla-view"
    crop: tuple[float, float] = (0.5, 1.0)  # training crop ratio of the valid frames
    test_crop: float = field(default=0.95, metadata=bound(lambda v: 0 < v <= 1, "in (0, 1]"))
    rotate: float = field(default=0.3, metadata=NON_NEGATIVE)  # radians, each axis uniform in [-rotate, rotate]
    view_degrees: int = field(default=60, metadata=NON_NEGATIVE)  # ucla-view: rotation about x and y, integer degrees
    scale: tuple[float, float] = (0.5, 1.5)  # ucla-view

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", tuple(float(x) for x in self.crop))  # YAML gives lists
        object.__setattr__(self, "scale", tuple(float(x) for x in self.scale))
        checks = [
            (self.kind in AUGMENTS, f"augment must be one of {AUGMENTS}"),
            (len(self.crop) == 2 and 0 < self.crop[0] <= self.crop[1] <= 1, "crop must be 0 < low <= high <= 1"),
            (0 < self.test_crop <= 1, "test_crop must be in (0, 1]"),
            (self.window > 1, "window must be > 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise MMCLError(f"training config: {message}")
