"""The skeleton layout and number of persons a network takes, and how other skeletons get there.

The one place that checks a source's layout and persons against a network's: a cache in another
layout than the network's (fine-tuning an NTU-25 model on Kinect v1 data, zero-shot) or one raw
sequence (predict) is mapped joint by joint (`shared.layouts.layout_map`) and padded with absent
(all-zero) persons. `map_input` checks any (layout, persons) pair; `input_layout` a training
cache against the --layout/--persons flags.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.cache_schema import SkeletonCache
from shared.errors import MMCLError
from shared.layouts import Layout, LayoutMap, describe_layout_maps, get_layout, layout_map, pad_persons

from .dataset import JointSource, MappedJoints


class NoLayoutMap(MMCLError):
    """No joint mapping from the source's skeleton layout to the network's."""

    def __init__(self, source: str, target: str) -> None:
        super().__init__(f"no mapping from the {source} skeleton layout to {target} "
                         f"(known: {describe_layout_maps()})")
        self.source, self.target = source, target


class TooManyPersons(MMCLError):
    """The source holds more persons per sample than the network takes."""

    def __init__(self, persons: int, num_person: int) -> None:
        super().__init__(f"the source holds up to {persons} persons per sample, the network takes {num_person}")
        self.persons, self.num_person = persons, num_person


@dataclass(frozen=True)
class InputLayout:
    """The skeleton layout and number of persons the network takes, and how a source's joints
    (`source` layout, `source_persons`) get there."""

    source: str
    source_persons: int
    layout: Layout
    num_person: int
    convert: LayoutMap

    @property
    def changed(self) -> bool:
        return self.source != self.layout.name or self.source_persons != self.num_person

    def joints(self, source: JointSource) -> JointSource | MappedJoints:
        """`source` as the network reads it (itself when nothing changes)."""
        return MappedJoints(source, self.convert, self.num_person) if self.changed else source

    def sample(self, joints: np.ndarray) -> np.ndarray:
        """One raw (T, M, V, 3) sequence in the source layout -> (T, num_person, V', 3)."""
        if joints.shape[1] > self.num_person:
            raise TooManyPersons(joints.shape[1], self.num_person)
        return pad_persons(self.convert(joints), self.num_person)

    def describe(self) -> str:
        def persons(n: int) -> str:
            return f"{n} person{'s' * (n != 1)}"

        return (f"{self.source} ({get_layout(self.source).num_joints} joints, {persons(self.source_persons)})"
                f" -> {self.layout.name} ({self.layout.num_joints} joints, {persons(self.num_person)})")


def map_input(source: str, source_persons: int, layout: str, num_person: int) -> InputLayout:
    """How a network taking `layout` skeletons with `num_person` persons reads a source in layout
    `source` with up to `source_persons` persons. Raises NoLayoutMap or TooManyPersons (both
    MMCLError, with the facts as attributes for callers that word their own message)."""
    try:
        target = get_layout(layout)
    except KeyError as e:
        raise MMCLError(e.args[0]) from None
    convert = layout_map(source, layout)
    if convert is None:
        raise NoLayoutMap(source, layout)
    if source_persons > num_person:
        raise TooManyPersons(source_persons, num_person)
    return InputLayout(source, source_persons, target, num_person, convert)


def input_layout(skeletons: SkeletonCache, layout: str | None = None, persons: int | None = None) -> InputLayout:
    """How the network reads `skeletons`: in `layout` (None: the cache's own; e.g. ntu25 maps
    Kinect v1 joints) with `persons` persons (None: the cache's; more pads with absent ones)."""
    name = layout or skeletons.layout
    try:
        get_layout(name)
    except KeyError as e:
        raise MMCLError(f"--layout {name}: {e.args[0]}") from None
    num_person = persons or skeletons.num_person
    try:
        return map_input(skeletons.layout, skeletons.num_person, name, num_person)
    except NoLayoutMap:
        raise MMCLError(f"{skeletons.path} holds {skeletons.layout} skeletons ({skeletons.num_joints} joints): "
                        f"no mapping to {name} (known: {describe_layout_maps()}); drop --layout to train "
                        f"on the cache's own layout") from None
    except TooManyPersons:
        raise MMCLError(f"{skeletons.path} holds up to {skeletons.num_person} persons per sample: "
                        f"--persons {num_person} cannot hold them") from None
