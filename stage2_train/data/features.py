"""FAM's targets and FRM's inputs: the cache's feature arrays for every sample, in skeleton order.

Only the arrays a run uses are read: never `rgb/frames` (N, K, D), the feature file's bulk
(about 1.5 GB for NTU120 at K=5, D=1280), nor the text side when FRM is off."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.cache_schema import SkeletonCache, check_rows, read_feature_arrays, resolve_features, text_input
from shared.errors import CacheError


@dataclass
class FeatureArrays:
    """FAM's target and FRM's input for every sample of the cache, in skeleton order.

    Rows of invalid samples hold zeros (finite filler) and are masked out of the loss.
    """

    name: str
    path: Path
    attrs: dict  # provenance: model ids and revisions, prompts, versions
    questions: list[str]  # the MLLM questions behind yes_prob's columns
    rgb: np.ndarray | None  # (N, D) float32, rgb/pooled
    rgb_valid: np.ndarray | None  # (N,) bool
    text: np.ndarray | None  # (N, Q + D_text) float32: yes_prob (NaN -> 0.5) ++ text/embedding
    text_valid: np.ndarray | None  # (N,) bool

    @property
    def rgb_dim(self) -> int | None:
        return None if self.rgb is None else self.rgb.shape[1]

    @property
    def text_dim(self) -> int | None:
        return None if self.text is None else self.text.shape[1]


def load_features(dataset_dir: Path, name: str | None, skeletons: SkeletonCache,
                  need_rgb: bool, need_text: bool) -> FeatureArrays | None:
    """The feature set FAM (`need_rgb`) and FRM (`need_text`) read; None when neither is on."""
    if not (need_rgb or need_text):
        return None
    path = resolve_features(dataset_dir, name)
    attrs = ["index"] + (["rgb_valid", "rgb_pooled"] if need_rgb else []) + (
        ["text_valid", "yes_prob", "text_embedding"] if need_text else [])
    try:
        header, arrays = read_feature_arrays(path, attrs)
        check_rows(path, header, arrays["index"], skeletons)
    except CacheError as e:
        raise CacheError(f"{e} (or train the plain backbone with --no-fam --no-frm)") from None
    rgb = rgb_valid = text = text_valid = None
    if need_rgb:
        rgb_valid = arrays["rgb_valid"].astype(bool)
        rgb = np.where(rgb_valid[:, None], arrays["rgb_pooled"].astype(np.float32), 0.0).astype(np.float32)
        _require(rgb.shape[1] > 0 and rgb_valid.any(), path, "rgb/pooled", "FAM", "--no-fam")
    if need_text:
        text_valid = arrays["text_valid"].astype(bool)
        text = text_input(arrays["yes_prob"], arrays["text_embedding"])
        text = np.nan_to_num(text.astype(np.float32), nan=0.5, posinf=0.0, neginf=0.0)
        text = np.where(text_valid[:, None], text, 0.0).astype(np.float32)
        _require(text.shape[1] > 0 and text_valid.any(), path, "text/embedding", "FRM", "--no-frm")
    return FeatureArrays(path.stem, path, dict(header.attrs), list(header.questions),
                         rgb, rgb_valid, text, text_valid)


def _require(ok: bool, path: Path, group: str, module: str, flag: str) -> None:
    if not ok:
        raise CacheError(
            f"{path}: no valid {group} for any sample, which {module} needs; extract the features "
            f"with `mmcl extract` (without --skeletons-only), or train without {module} ({flag})")
