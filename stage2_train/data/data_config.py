"""Which data a training run reads: the cache, protocol, stream, feature set, validation split and
how the network's input layout relates to the cache's. Torch-free; `train.build_data` applies it."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.errors import MMCLError
from shared.layouts import LAYOUTS

from ..settings import FRACTION, NON_NEGATIVE, between
from .streams import canonical_stream


@dataclass(frozen=True)
class DataConfig:
    cache: str = "cache"  # cache root or one dataset's directory
    dataset: str = ""  # filled in from the cache
    protocol: str | None = None  # None: the dataset's first protocol
    stream: str = "joint"
    features: str | None = None  # feature set name; None: the only one present
    # the training set is seen `repeat` times per epoch (NW-UCLA: 5)
    repeat: int = field(default=1, metadata=between(1, 10_000, "NW-UCLA's recipe repeats 5 times"))
    val_split: float = field(default=0.0, metadata=FRACTION)  # fraction of the training samples held out
    # draws the validation split; apart from `seed` so that streams trained with different seeds hold
    # out the same samples (the ensemble weight search needs that)
    val_seed: int = field(default=0, metadata=NON_NEGATIVE)
    # None: 0 when the frames are in memory, else up to 4
    workers: int | None = field(default=None, metadata=between(0, 1024, "processes"))
    in_memory: bool | None = None  # None: load the frames when they fit in memory
    on_device: bool = False  # the training rows' frames and features held on the device (device_batches)
    # The network's input; None: the cache's (config.resolve_input_layout fills them in before training).
    layout: str | None = None  # skeleton layout (another than the cache's maps the joints)
    # persons per sample (more than the cache's pads absent ones)
    persons: int | None = field(default=None,
                                metadata=between(1, 16, "the datasets have 1 or 2; the input grows with it"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "stream", canonical_stream(self.stream))
        checks = [
            (0.0 <= self.val_split < 1.0, "val_split must be in [0, 1)"),
            (self.layout is None or self.layout in LAYOUTS, f"layout must be one of {', '.join(LAYOUTS)}"),
            (self.persons is None or self.persons >= 1, "persons must be at least 1"),
            (self.repeat >= 1, "repeat must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise MMCLError(f"training config: {message}")
