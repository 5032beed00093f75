"""MMCLModel: backbone plus training-only heads; export keeps the backbone alone."""

from __future__ import annotations

import pytest
import torch
from accelerate.utils import convert_to_fp32

from shared.errors import MMCLError
from stage2_train.models.ctrgcn import CTRGCN
from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig
from stage2_train.models.losses import mmcl_loss
from stage2_train.models.mmcl_model import MMCLModel, MMCLOutput

TINY = CTRGCNConfig(num_class=6, num_point=20, num_person=1, graph="kinect_v1", base_channel=8)


def full_model(seed: int = 0) -> MMCLModel:
    torch.manual_seed(seed)
    return MMCLModel(MMCLModelConfig(TINY, use_fam=True, use_frm=True, rgb_dim=12, text_dim=5))


def inputs(n: int = 4):
    gen = torch.Generator().manual_seed(1)
    return (
        torch.randn(n, 3, 8, 20, 1, generator=gen),
        torch.randn(n, 12, generator=gen),
        torch.randn(n, 5, generator=gen),
        torch.randint(0, 6, (n,), generator=gen),
    )


def test_outputs_and_missing_modalities():
    model = full_model()
    x, rgb, text, _ = inputs()
    out = model(x, rgb, text)
    assert out.logits.shape == (4, 6) and out.refined.shape == (4, 6)
    assert out.feature.shape == out.rgb_proj.shape == (4, TINY.feature_dim)
    bare = model(x)
    assert bare.rgb_proj is None and bare.refined is None


def test_output_is_typed_and_reads_as_a_mapping():
    """HF-style: fields, and the mapping view the callers of the dict it replaced use; accelerate's
    float32 conversion of autocast outputs rebuilds it as `type(out)(dict)` and keeps the type."""
    model = full_model()
    x, rgb, text, _ = inputs()
    out = model(x, rgb, text)
    assert isinstance(out, MMCLOutput)
    assert list(out) == ["logits", "feature", "rgb_proj", "refined", "backbone_loss"] and len(out) == 5
    assert out.backbone_loss is None  # CTR-GCN has no loss of its own
    assert out["logits"] is out.logits and dict(out)["refined"] is out.refined
    with pytest.raises(KeyError):
        out["loss"]
    half = MMCLOutput(**{k: None if v is None else v.to(torch.bfloat16) for k, v in out.items()})
    back = convert_to_fp32(half)
    assert isinstance(back, MMCLOutput) and all(v.dtype == torch.float32 for v in back.values() if v is not None)
    torch.testing.assert_close(back.logits, out.logits.to(torch.bfloat16).float())
    assert MMCLOutput(dict(model(x))).rgb_proj is None
    with pytest.raises(MMCLError, match="required"):
        MMCLOutput(out.logits)


def _backward(model: MMCLModel) -> None:
    x, rgb, text, labels = inputs()
    model.zero_grad()
    out = model(x, rgb, text)
    mmcl_loss(
        out["logits"], labels, refined=out["refined"], feature=out["feature"], rgb_proj=out["rgb_proj"]
    ).total.backward()


def test_every_parameter_gets_a_gradient():
    model = full_model()
    _backward(model)
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # FRM's class-wise vectors start equal (all ones), so S_R does not depend on the mixing weights
    # and its MLP gets no gradient on the first step (the softmax Jacobian sums to zero): exactly 0
    # on some CPUs, float rounding (~1e-9, against FAM's ~1e-2) on others.
    assert all(p.grad.abs().max() < 1e-6 for p in model.frm.mlp.parameters())
    # One step makes the vectors differ; from then on every head parameter learns.
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    _backward(model)
    for head in (model.fam, model.frm):
        assert all(p.grad.abs().sum() > 0 for p in head.parameters())


def test_skeleton_model_excludes_heads():
    model = full_model()
    skeleton = model.skeleton_model()
    assert isinstance(skeleton, CTRGCN)
    assert not any(k.startswith(("fam", "frm")) for k in skeleton.state_dict())
    assert set(skeleton.state_dict()) == {
        k.removeprefix("backbone.") for k in model.state_dict() if k.startswith("backbone.")
    }
    x = inputs()[0]
    model.eval()
    torch.testing.assert_close(skeleton(x), model(x)["logits"])


def test_refine_needs_a_trained_frm():
    model = full_model()
    logits, text = torch.randn(2, 6), torch.randn(2, 5)
    torch.testing.assert_close(model.refine(logits, text), model.frm(logits, text))
    plain = MMCLModel(MMCLModelConfig(TINY))
    assert plain.fam is None and plain.frm is None
    with pytest.raises(MMCLError, match="without FRM"):
        plain.refine(logits, text)


def test_config_requires_feature_widths():
    with pytest.raises(MMCLError, match="rgb_dim"):
        MMCLModelConfig(TINY, use_fam=True)
    with pytest.raises(MMCLError, match="text_dim"):
        MMCLModelConfig(TINY, use_frm=True)
    config = MMCLModelConfig(TINY, use_fam=True, use_frm=True, rgb_dim=1280, text_dim=384)
    assert config.fam.out_dim == TINY.feature_dim and config.frm.num_class == TINY.num_class
