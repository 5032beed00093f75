"""What identifies a feature set: its default name, the requested settings (checked on resume)
and the header every part carries (model identities and revisions, library versions)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from importlib import metadata
from pathlib import Path

import numpy as np

from shared.cache_schema import FeatureHeader, SkeletonCache
from shared.dataset_spec import DatasetSpec

from .featurize import Models
from .model_specs import ModelSpecs
from .temporal_image import BOX_WHOLE_FRAME, TemporalImageConfig, box_source

LIBRARIES = (
    "mmcl-action",
    "torch",
    "transformers",
    "vllm",
    "sentence-transformers",
    "decord",
    "pillow",
    "numpy",
    "h5py",
)


def _basename(spec: str) -> str:
    path = Path(str(spec).rstrip("/"))
    return (path.stem if path.suffix in (".pth", ".pt") else path.name) or str(spec)


def sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "features"


def default_feature_set_name(models: ModelSpecs, image: TemporalImageConfig) -> str:
    """`<mllm>__<rgb>__<text>__k<K>`, plus a short hash when prompts or crops differ from the
    defaults, so that several feature sets of one dataset live side by side."""
    name = "__".join(
        [_basename(models.mllm), _basename(models.rgb_encoder), _basename(models.text_encoder), f"k{image.frames}"]
    )
    custom = {}
    if models.prompts is not None:
        custom["prompts"] = Path(models.prompts).read_bytes().hex()
    defaults = TemporalImageConfig(frames=image.frames)
    if (image.image_size, image.margin, image.min_box) != (defaults.image_size, defaults.margin, defaults.min_box):
        custom["image"] = [image.image_size, image.margin, image.min_box]
    if custom:
        name += "__" + hashlib.sha1(json.dumps(custom, sort_keys=True).encode()).hexdigest()[:6]
    return sanitize(name)


def request_attrs(
    spec: DatasetSpec, models: ModelSpecs, image: TemporalImageConfig, prompts, frame_features: bool = False
) -> dict:
    """What the user asked for; known before any model loads, so a resume can be checked at once."""
    return {
        "dataset": spec.name,
        "mllm_spec": models.mllm,
        "rgb_encoder_spec": models.rgb_encoder,
        "text_encoder_spec": models.text_encoder,
        "frames": image.frames,
        "frame_features": frame_features,
        "image_size": list(image.image_size),
        "crop_margin": image.margin,
        "min_box": image.min_box,
        "prompts": json.dumps(_as_dict(prompts), sort_keys=True),
    }


def _as_dict(obj) -> dict:
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(vars(obj))


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def feature_header(skeletons: SkeletonCache, spec: DatasetSpec, request: dict, models: Models) -> FeatureHeader:
    """The header every part of this feature set carries: request, model identities, versions."""
    attrs = dict(request)
    attrs.update(
        mllm_id=models.mllm.model_id,
        mllm_revision=models.mllm.revision or "",
        mllm_backend=models.mllm.name,
        rgb_encoder_id=models.rgb.model_id,
        rgb_encoder_revision=models.rgb.revision or "",
        rgb_dim=int(models.rgb.dim),
        rgb_image_size=list(models.rgb.image_size),
        rgb_input=models.rgb.input_policy,  # how the temporal image's aspect is kept
        text_encoder_id=models.text.model_id,
        text_encoder_revision=getattr(models.text, "revision", None) or "",
        text_dim=int(models.text.dim),
        library_versions=json.dumps(library_versions(), sort_keys=True),
    )
    attrs["params"] = json.dumps(request, sort_keys=True)  # the settings, in one attribute
    attrs["crop_boxes"] = box_source(skeletons.color_resolution is not None, spec.layout_name)
    if attrs["crop_boxes"] == BOX_WHOLE_FRAME:
        logging.getLogger(__name__).warning(
            "%s: temporal images of whole frames, not cropped to the person (%s)", spec.name, BOX_WHOLE_FRAME
        )
    class_embedding = models.text.encode(spec.class_names).astype(np.float16)
    return FeatureHeader(
        names_hash=skeletons.names_hash,
        num_samples=len(skeletons),
        questions=list(models.prompts.questions),
        class_names=spec.class_names,
        class_embedding=class_embedding,
        attrs=attrs,
    )


def _plain(value):
    """Attribute values as plain Python (h5py returns numpy types) for comparison."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    return value


def attr_differences(expected: dict, found: dict, keys=None) -> list[str]:
    keys = keys if keys is not None else sorted(set(expected) | set(found))
    return [
        f"{k}: {_plain(found.get(k))!r} here, {_plain(expected.get(k))!r} now"
        for k in keys
        if _plain(expected.get(k)) != _plain(found.get(k))
    ]
