"""How training and test samples are cropped, resized and augmented (CTR-GCN's two feeders).

Torch-free, so the training config can nest it; `transforms.BatchAugment` applies it. The origin
every sequence is translated to is the input layout's centre joint, not a setting.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..settings import NON_NEGATIVE, between, bound, check_fields, setting

AUGMENTS = ("crop-rotate", "ucla-view")  # CTR-GCN's NTU feeder, CTR-GCN's NW-UCLA feeder


@dataclass(frozen=True)
class AugmentConfig:
    window: int = setting(64, flag=True, recipe=True, fixed_on_resume=True,
                          check=between(2, 10_000, "frames per sample; NTU clips have at most 300"),
                          help="Frames per sample after crop and resize ({default}; NW-UCLA 52).")
    # evaluation on `test_clips` windows per sample, their softmax probabilities averaged (pyskl's test;
    # clip_sampling); 1: one centre crop resized to the window
    test_clips: int = setting(1, flag=True, recipe=True, at_least=1,
                              check=between(1, 100, "windows per test sample; pyskl tests on 10"),
                              help="Windows per sample at evaluation ({default}: one centre crop; ST-GCN++ and "
                                   "ProtoGCN recipes 10, pyskl's clips with their class probabilities averaged).")
    kind: str = setting("crop-rotate", key="augment", choices=AUGMENTS, fixed_on_resume=True)
    # training crop ratio of the valid frames
    crop: tuple[float, float] = setting((0.5, 1.0), check=bound(lambda v: len(v) == 2 and 0 < v[0] <= v[1] <= 1,
                                                                 "0 < low <= high <= 1"))
    test_crop: float = setting(0.95, check=bound(lambda v: 0 < v <= 1, "in (0, 1]"))
    rotate: float = setting(0.3, check=NON_NEGATIVE)  # radians, each axis uniform in [-rotate, rotate]
    view_degrees: int = setting(60, check=NON_NEGATIVE)  # ucla-view: rotation about x and y, integer degrees
    scale: tuple[float, float] = (0.5, 1.5)  # ucla-view

    def __post_init__(self) -> None:
        object.__setattr__(self, "crop", tuple(float(x) for x in self.crop))  # YAML gives lists
        object.__setattr__(self, "scale", tuple(float(x) for x in self.scale))
        check_fields(self)
