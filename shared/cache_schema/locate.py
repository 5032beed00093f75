"""Finding caches: the dataset directories under a root, and a dataset's feature sets."""

from __future__ import annotations

from pathlib import Path

from ..errors import CacheError
from .common import FEATURES_DIR, SKELETON_FILE


def dataset_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in Path(root).glob(f"*/{SKELETON_FILE}"))


def resolve_dataset_dir(cache: str | Path, dataset: str | None = None) -> Path:
    """`--cache` is a dataset directory, or a root holding exactly one (or `dataset`'s)."""
    cache = Path(cache)
    if (cache / SKELETON_FILE).exists():
        return cache
    if dataset is not None and (cache / dataset / SKELETON_FILE).exists():
        return cache / dataset
    found = dataset_dirs(cache) if cache.is_dir() else []
    if len(found) == 1 and dataset is None:
        return found[0]
    if not found:
        raise CacheError(
            f"no skeleton cache under {cache} (looked for {cache / SKELETON_FILE} and "
            f"{cache}/*/{SKELETON_FILE}); run `mmcl extract --dataset NAME --out {cache}` first"
        )
    # every command that reads a cache takes --cache; not all of them take --dataset
    choices = " or ".join(f"--cache {p}" for p in found)
    raise CacheError(f"{cache} holds several datasets ({', '.join(p.name for p in found)}); choose one: {choices}")


def feature_files(dataset_dir: Path) -> list[Path]:
    """Complete feature sets of a dataset directory (shard and chunk files excluded)."""
    return sorted(p for p in (Path(dataset_dir) / FEATURES_DIR).glob("*.h5") if ".shard-" not in p.name)


def resolve_features(dataset_dir: Path, name: str | None) -> Path:
    """`--features NAME`, or the only feature set present; a clear error otherwise."""
    found = feature_files(dataset_dir)
    if name is not None:
        for p in found:
            if name in (p.stem, p.name, str(p)):
                return p
        if Path(name).is_file():
            return Path(name)
        listed = ", ".join(p.stem for p in found) or "none"
        raise CacheError(f"no feature set {name!r} in {dataset_dir / FEATURES_DIR} (present: {listed})")
    if len(found) == 1:
        return found[0]
    if not found:
        raise CacheError(
            f"no feature file in {dataset_dir / FEATURES_DIR}: FAM needs rgb/pooled and FRM needs "
            f"text/* from `mmcl extract --dataset {dataset_dir.name}` (without --skeletons-only), "
            f"or train the plain backbone with --no-fam --no-frm"
        )
    raise CacheError(
        f"several feature sets in {dataset_dir / FEATURES_DIR}: "
        f"{', '.join(p.stem for p in found)}; choose one with --features NAME"
    )
