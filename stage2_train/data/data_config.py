"""Which data a training run reads: the cache, protocol, stream, feature set, validation split and
how the network's input layout relates to the cache's. Torch-free; `run_data.build_data` applies it."""

from __future__ import annotations

from dataclasses import dataclass

from shared.layouts import LAYOUTS

from ..settings import FRACTION, NON_NEGATIVE, between, bound, check_fields, setting
from .streams import STREAMS, canonical_stream, is_stream


@dataclass(frozen=True)
class DataConfig:
    cache: str = setting("cache", flag=True, path="any",
                         help="Cache root or one dataset's directory (default: {default}).")
    dataset: str = setting("", fixed_on_resume=True)  # filled in from the cache
    protocol: str | None = setting(None, flag=True, fixed_on_resume=True,
                                   help="Split protocol (default: the dataset's first, e.g. xsub, view3).")
    stream: str = setting("joint", flag=True, fixed_on_resume=True, choices=STREAMS + ("joint_motion", "bone_motion"),
                          check=bound(is_stream, f"one of {', '.join(STREAMS)}"),  # any case, _ or -
                          help="Input stream (default: {default}).")
    features: str | None = setting(None, flag=True,
                                   help="Feature set under <cache>/features (default: the only one).")
    # the training set is seen `repeat` times per epoch (NW-UCLA: 5)
    repeat: int = setting(1, recipe=True, check=between(1, 10_000, "NW-UCLA and ST-GCN++ recipes repeat 5 times"))
    val_split: float = setting(0.0, flag=True, check=FRACTION, fixed_on_resume=True,
                               help="Fraction of the training samples held out (seeded) for validation.")
    # draws the validation split; apart from `seed` so that streams trained with different seeds hold
    # out the same samples (the ensemble weight search needs that)
    val_seed: int = setting(0, flag=True, check=NON_NEGATIVE, fixed_on_resume=True,
                            help="Seed of the validation draw (default {default}, the same for every stream and "
                                 "--seed).")
    workers: int | None = setting(None, flag=True, check=between(0, 1024, "processes"),
                                  help="DataLoader worker processes (default: 0 in memory, else 4).")
    in_memory: bool | None = None  # None: load the frames when they fit in memory
    # the training rows' frames and features held on the device (device_batches)
    on_device: bool = setting(
        False, flag="--data-on-device", switch=True,
        help="Hold the training frames and features on the training device and draw batches there "
             "(no DataLoader; for a GPU with room for the cache: NTU120 frames are about 2 GB). "
             "The same batches as the DataLoader's.")
    # The network's input; None: the cache's (input_resolution.resolve_input_layout fills them in before training).
    layout: str | None = setting(
        None, flag=True, fixed_on_resume=True, choices=sorted(LAYOUTS),
        help="Skeleton layout the network takes; another than the cache's maps the joints "
             "(default: the cache's, or the --init-from checkpoint's where the cache maps to it).")
    persons: int | None = setting(
        None, flag=True, fixed_on_resume=True, at_least=1,
        check=between(1, 16, "the datasets have 1 or 2; the input grows with it"),
        help="Persons per sample; more than the cache's pads absent ones "
             "(default: the --init-from checkpoint's, else the cache's).")

    def __post_init__(self) -> None:
        object.__setattr__(self, "stream", canonical_stream(self.stream))
        check_fields(self)
