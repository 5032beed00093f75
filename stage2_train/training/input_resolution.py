"""The network's input layout and persons for a run: the cache's, or an --init-from checkpoint's
where the cache's joints map to it (fine-tuning an NTU-25 model on Kinect v1 skeletons)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.cache_schema import SkeletonCache
from shared.layouts import layout_map

from .config import TrainConfig

if TYPE_CHECKING:
    from ..models.model_spec import InputSpec


def resolve_input_layout(
    cfg: TrainConfig, skeletons: SkeletonCache, init: InputSpec | None = None
) -> tuple[TrainConfig, list[str]]:
    """Fill in the network's input layout and persons; returns the config and lines telling the
    user how the input differs from the cache's, and why.

    Defaults: the cache's own. With --init-from (`init`: the input spec of the checkpoint it
    names), the checkpoint's number of persons (or the
    cache's, if more) and, when the cache's joints map to it, the checkpoint's layout, so the
    layout-dependent tensors (data_bn, the graph's adjacency) load too: a Kinect v1 cache (SYSU,
    NW-UCLA) fine-tuned from an NTU-25 model is read as NTU-25. Checkpoints record the resolved
    values, so test, export, predict and zero-shot prepare their input the same way.
    """
    # Imported here: `mmcl --help` and the config file tests need no torch.
    from ..data.input_layout import input_layout

    layout, persons, notes = cfg.data.layout, cfg.data.persons, []
    if init is not None and (layout is None or persons is None):
        init_layout, init_persons = init.layout, init.num_person
        if layout is None and init_layout != skeletons.layout:
            if layout_map(skeletons.layout, init_layout) is not None:
                layout = init_layout
                notes.append(
                    f"mapping the cache's {skeletons.layout} joints to {init_layout}, the layout "
                    f"--init-from {cfg.init_from} was trained on (--layout {skeletons.layout} "
                    f"keeps the cache's)"
                )
            else:
                notes.append(
                    f"--init-from {cfg.init_from} was trained on {init_layout} skeletons, to which "
                    f"{skeletons.layout} does not map: its layout-dependent tensors start fresh"
                )
        if persons is None:
            persons = max(init_persons, skeletons.num_person)
    view = input_layout(skeletons, layout, persons)  # checks the mapping and the persons
    cfg = cfg.with_input(layout=view.layout.name, persons=view.num_person)
    if view.changed:
        notes.insert(0, f"input: {skeletons.dataset} skeletons {view.describe()}")
    return cfg, notes
