"""A dataset of one's own: a manifest names its classes, layout and protocols and lists each sample's
skeleton file (and video); `mmcl extract --dataset custom --manifest FILE` builds its cache as it
builds a registry dataset's, and stage 2 then reads everything it needs from that cache.

    # manifest.yaml; paths are relative to this file
    name: gym                       # the cache folder (cache/gym/); not a built-in dataset's name
    title: Gym exercises            # optional
    layout: ntu25                   # ntu25 (Kinect v2, 25 joints) or kinect_v1 (20 joints)
    persons: 1                      # bodies per frame (default 1); fewer in a file are padded
    color_resolution: [1920, 1080]  # optional: the image size the files' colour coordinates refer to
    classes:                        # a sample's label is a name (or 0-based index) in this list
      - squat
      - {name: sit down, ntu_id: 8} # its NTU RGB+D 120 action id lets zero-shot map it
    protocols: [xsub]               # one train/test column per protocol in the sample table
    samples: samples.csv            # or the same rows inline, as a list of mappings

    # samples.csv: name, label, skeleton and one column per protocol are required
    name,label,skeleton,video,subject,xsub
    p01_squat_1,squat,skeletons/p01_squat_1.npy,videos/p01_squat_1.mp4,1,train

Skeleton files are read by their suffix: `.skeleton` (NTU RGB+D, cleaned as the official scripts
do), `.json` (NW-UCLA), `_skeleton.mat` (UTD-MHAD), `.npy` / `.npz` (shared.array_skeleton). A
video is a file or a folder of frames; without one, the sample trains with the skeleton losses only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, fields
from functools import cached_property, lru_cache
from pathlib import Path

import yaml

from .array_skeleton import ARRAY_SUFFIXES
from .errors import MMCLError
from .layouts import LAYOUTS
from .dataset_spec import ClassInfo, DatasetSpec, Protocol, SampleMeta
from .registry import DATASETS
from .sample_names import name_problem
from .text_files import read_text

CUSTOM = "custom"  # the --dataset value that takes a manifest
MANIFEST_KEYS = ("name", "title", "layout", "persons", "color_resolution", "classes", "protocols", "samples")
META_COLUMNS = tuple(f.name for f in fields(SampleMeta) if f.name not in ("name", "action"))
META_MAX = 2**31 - 1  # subject, camera, ...: int32 in skeletons.h5
SPLIT_VALUES = {"train": True, "test": False}
# skeleton file endings, longest first, and the reader each one means (see shared.readers)
SKELETON_SUFFIXES = {
    "_skeleton.mat": "utd_mat",
    ".skeleton": "ntu",
    ".json": "ucla_json",
    **{s: "array" for s in ARRAY_SUFFIXES},
}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ManifestError(MMCLError):
    """A manifest that cannot be used; the message names the file, the row and the problem."""


@dataclass(frozen=True)
class ManifestSample:
    meta: SampleMeta
    skeleton: Path
    video: Path | None


@dataclass(frozen=True)
class Manifest:
    path: Path
    spec: DatasetSpec
    samples: tuple[ManifestSample, ...]
    digest: str  # of the manifest and its sample table: a changed manifest rebuilds the cache

    @cached_property
    def videos(self) -> dict[str, Path | None]:
        return {s.meta.name: s.video for s in self.samples}

    def video(self, name: str) -> Path:
        if name not in self.videos:
            raise MMCLError(f"{self.path}: no sample {name}")
        if self.videos[name] is None:
            raise MMCLError(f"{self.path}: no video listed for sample {name}")
        return self.videos[name]


def skeleton_format(path: Path) -> str:
    for suffix, fmt in SKELETON_SUFFIXES.items():
        if path.name.endswith(suffix):
            return fmt
    raise MMCLError(f"{path}: unknown skeleton file ending (known: {', '.join(SKELETON_SUFFIXES)})")


@lru_cache(maxsize=8)
def load_manifest(path: str | Path) -> Manifest:
    """The manifest at `path`, checked whole: every problem is a ManifestError naming where it is."""
    path = Path(path).resolve()
    try:
        text = read_text(path, "manifest")
        doc = yaml.safe_load(text)
    except OSError as e:
        raise ManifestError(f"{path}: cannot read the manifest ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise ManifestError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{path}: expected a mapping with the keys {', '.join(MANIFEST_KEYS)}")
    unknown = sorted(set(doc) - set(MANIFEST_KEYS))
    if unknown:
        raise ManifestError(
            f"{path}: unknown key(s) {', '.join(map(str, unknown))} (known: {', '.join(MANIFEST_KEYS)})"
        )
    for key in ("name", "layout", "classes", "protocols", "samples"):
        if doc.get(key) in (None, "", []):
            raise ManifestError(f"{path}: '{key}' is missing")
    name = _name(doc["name"], path)
    layout = str(doc["layout"])
    if layout not in LAYOUTS:
        raise ManifestError(f"{path}: layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    persons = doc.get("persons", 1)
    if not isinstance(persons, int) or isinstance(persons, bool) or persons < 1:
        raise ManifestError(f"{path}: persons must be a whole number >= 1, not {persons!r}")
    classes = _classes(doc["classes"], path)
    protocols = _protocols(doc["protocols"], path)
    rows, where, table_text = _rows(doc["samples"], path)
    samples, problems = [], []
    for i, row in rows:  # every row checked whole: all the table's problems in one pass, not the first alone
        found = _row_problems(row, f"{where}, row {i}", path.parent, classes, protocols)
        if found:
            problems += found
        else:
            samples.append(_sample(row, path.parent, classes))
    names = [str(row.get("name", "")).strip() for _, row in rows]
    problems += _repeated([n for n in names if n], where, "sample name")
    if len(problems) == 1:
        raise ManifestError(problems[0])
    if problems:
        raise ManifestError(f"{where}: {len(problems)} problems (each row checked):\n  " + "\n  ".join(problems))
    splits = {p: frozenset(s.meta.name for s, train in zip(samples, _splits(rows, p)) if train) for p in protocols}
    spec = DatasetSpec(
        name=name,
        title=str(doc.get("title") or name),
        classes=classes,
        layout_name=layout,
        num_person=persons,
        protocols=tuple(Protocol(p, train_names=splits[p]) for p in protocols),
        name_regex=r".+",
        skeleton_format="by_suffix",
        skeleton_dirs=(),
        video_dirs=(),
        video_pattern="{name}",
        color_resolution=_resolution(doc.get("color_resolution"), path),
        manifest=str(path),
    )
    digest = hashlib.sha256((text + "\0" + table_text).encode()).hexdigest()
    return Manifest(path, spec, samples, digest)


def _name(value, path: Path) -> str:
    name = str(value)
    if not NAME.fullmatch(name):
        raise ManifestError(
            f"{path}: name {name!r} must be letters, digits, '.', '_' or '-' (it names the cache folder)"
        )
    if name in DATASETS:
        raise ManifestError(
            f"{path}: name {name!r} is a built-in dataset; choose another name, or use "
            f"--dataset {name} for the dataset itself"
        )
    return name


def _classes(value, path: Path) -> tuple[ClassInfo, ...]:
    if not isinstance(value, list):
        raise ManifestError(f"{path}: 'classes' must be a list of names or {{name, ntu_id}} mappings")
    out = []
    for i, c in enumerate(value):
        entry = c if isinstance(c, dict) else {"name": c}
        extra = set(entry) - {"name", "ntu_id"}
        ntu_id = entry.get("ntu_id")
        if extra or not str(entry.get("name") or "").strip():
            raise ManifestError(
                f"{path}: class {i + 1} ({c!r}) must be a name or a mapping with name and optional ntu_id"
            )
        if ntu_id is not None and (not isinstance(ntu_id, int) or isinstance(ntu_id, bool) or not 1 <= ntu_id <= 120):
            raise ManifestError(
                f"{path}: class {entry['name']!r}: ntu_id {ntu_id!r} is not an NTU RGB+D 120 action id (1-120)"
            )
        out.append(ClassInfo(i + 1, str(entry["name"]).strip(), ntu_id))
    _check_unique([c.name for c in out], path, "class name")
    return tuple(out)


def _protocols(value, path: Path) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(p, str) and NAME.fullmatch(p) for p in names):
        raise ManifestError(f"{path}: 'protocols' must be a list of names (letters, digits, '.', '_', '-')")
    _check_unique(names, path, "protocol")
    clash = sorted(set(names) & {"name", "label", "skeleton", "video", *META_COLUMNS})
    if clash:
        raise ManifestError(f"{path}: protocol name(s) {', '.join(clash)} clash with the sample table's columns")
    return tuple(names)


def _rows(value, path: Path) -> tuple[list[tuple[int, dict]], str, str]:
    """(row number, row) pairs, where they come from (for messages) and the table's text."""
    if isinstance(value, list):
        if not all(isinstance(r, dict) for r in value):
            raise ManifestError(f"{path}: 'samples' must be a file name or a list of mappings")
        return list(enumerate(value, start=1)), f"{path}, samples", ""
    table = path.parent / str(value)
    try:
        text = read_text(table, "sample table")  # newlines kept: csv's own line handling (quoted newlines)
    except OSError as e:
        raise ManifestError(f"{path}: cannot read its sample table {table} ({e.strerror or e})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [str(k).strip() for k in (reader.fieldnames or [])]
    repeated = sorted({k for k in header if header.count(k) > 1})
    if repeated:  # csv would keep the last column of a name silently
        raise ManifestError(f"{table}, row 1: column(s) {', '.join(repeated)} appear more than once")
    rows = []
    for i, row in enumerate(reader, start=2):  # row 1 is the header
        if row.get(None):  # more fields than the header names: the values would be dropped silently
            raise ManifestError(
                f"{table}, row {i}: {len(header) + len(row[None])} fields, the header names "
                f"{len(header)} (a comma in a value must be quoted)"
            )
        rows.append((i, {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}))
    if not rows:
        raise ManifestError(f"{table}: no samples (expected a header line and one line per sample)")
    return rows, str(table), text


def _splits(rows, protocol: str) -> list[bool]:
    return [SPLIT_VALUES[str(row[protocol]).strip().lower()] for _, row in rows]


def _row_problems(
    row: dict, at: str, base: Path, classes: tuple[ClassInfo, ...], protocols: tuple[str, ...]
) -> list[str]:
    """Every problem of one sample row, each naming where it is (empty: the row is good)."""
    known = ("name", "label", "skeleton", "video", *META_COLUMNS, *protocols)
    unknown = sorted(set(row) - set(known))
    problems = []
    if unknown:
        problems.append(f"{at}: unknown column(s) {', '.join(map(str, unknown))} (known: {', '.join(known)})")
    empty = [key for key in ("name", "label", "skeleton", *protocols) if str(row.get(key, "")).strip() == ""]
    problems += [f"{at}: '{key}' is empty" for key in empty]
    for p in protocols:
        if p not in empty and str(row[p]).strip().lower() not in SPLIT_VALUES:
            problems.append(f"{at}: {p} is {row[p]!r}; expected train or test")
    for key in META_COLUMNS:
        value = str(row.get(key, "")).strip()
        if not value:
            continue
        try:
            number = int(value)
        except ValueError:
            problems.append(f"{at}: {key} {value!r} is not a whole number")
            continue
        if not 0 <= number <= META_MAX:  # stored as int32 in skeletons.h5
            problems.append(f"{at}: {key} {value} is out of range (0 to {META_MAX})")
    if "skeleton" not in empty:
        try:
            skeleton_format(base / str(row["skeleton"]).strip())
        except MMCLError as e:
            problems.append(f"{at}: {e}")
    if "name" not in empty and (problem := name_problem(str(row["name"]).strip())) is not None:
        problems.append(
            f"{at}: name {str(row['name']).strip()!r} is refused: {problem} (a sample name must be "
            f"one plain file-name component)"
        )
    if "label" not in empty and _action(row["label"], classes) is None:
        text = str(row["label"]).strip()
        shown = ", ".join(c.name for c in classes[:8]) + (", ..." if len(classes) > 8 else "")
        problems.append(f"{at}: label {text!r} is not one of the classes ({shown}) nor an index 0-{len(classes) - 1}")
    return problems


def _sample(row: dict, base: Path, classes: tuple[ClassInfo, ...]) -> ManifestSample:
    """The sample of a row `_row_problems` found good."""
    meta_values = {key: int(str(row[key]).strip()) for key in META_COLUMNS if str(row.get(key, "")).strip()}
    meta = SampleMeta(name=str(row["name"]).strip(), action=_action(row["label"], classes), **meta_values)
    video = str(row.get("video") or "").strip()
    return ManifestSample(meta, base / str(row["skeleton"]).strip(), base / video if video else None)


def _action(value, classes: tuple[ClassInfo, ...]) -> int | None:
    """The class's action number (its 1-based position) from a name or a 0-based index; None if neither."""
    text = str(value).strip()
    for c in classes:
        if c.name == text:
            return c.action
    if text.isdigit() and int(text) < len(classes):
        return classes[int(text)].action
    return None


def _resolution(value, path: Path) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ManifestError(f"{path}: color_resolution must be [width, height] in pixels, not {value!r}")
    return int(value[0]), int(value[1])


def _check_unique(values: list[str], where, what: str) -> None:
    problems = _repeated(values, where, what)
    if problems:
        raise ManifestError(problems[0])


def _repeated(values: list[str], where, what: str) -> list[str]:
    """One problem per value that appears more than once."""
    seen, repeated = set(), []
    for v in values:
        if v in seen and v not in repeated:
            repeated.append(v)
        seen.add(v)
    return [f"{where}: {what} {v!r} appears more than once" for v in repeated]
