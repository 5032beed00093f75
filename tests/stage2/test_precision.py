"""The run's mixed precision (training.precision): accelerate's rules, applied without its
process-wide state, so runs of different precision share a process."""

from __future__ import annotations

import pytest
import torch
from accelerate import Accelerator

from stage2_train.models.mmcl_model import MMCLModel, MMCLOutput
from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig
from stage2_train.training.precision import MixedPrecision

TINY = CTRGCNConfig(num_class=6, num_point=20, num_person=1, graph="kinect_v1", base_channel=8)
CPU = torch.device("cpu")


def model_and_input():
    torch.manual_seed(0)
    model = MMCLModel(MMCLModelConfig(TINY, use_fam=True, use_frm=False, rgb_dim=12)).eval()
    return model, torch.randn(2, 3, 8, 20, 1), torch.randn(2, 12)


def test_cpu_rules_are_accelerates():
    """bf16 autocasts on any CPU; fp16 on the CPU is float32 (no autocast, no scaler), as in accelerate."""
    bf16, fp16, no = (MixedPrecision.for_device(name, CPU) for name in ("bf16", "fp16", "no"))
    assert bf16.dtype == torch.bfloat16 and bf16.scaler is None
    assert fp16.dtype is None and fp16.scaler is None and no.dtype is None


def test_bf16_autocasts_the_forward_and_returns_float32():
    model, x, rgb = model_and_input()
    plain = MixedPrecision.for_device("no", CPU).forward(model, x, rgb=rgb)
    half = MixedPrecision.for_device("bf16", CPU).forward(model, x, rgb=rgb)
    assert isinstance(half, MMCLOutput) and half.refined is None
    assert all(v.dtype == torch.float32 for v in half.values() if v is not None)
    assert not torch.equal(half.logits, plain.logits)  # computed in bf16
    torch.testing.assert_close(half.logits, plain.logits, rtol=0.1, atol=0.1)
    with torch.no_grad():  # the model itself is left as it was: evaluation calls it in float32
        torch.testing.assert_close(model(x, rgb).logits, plain.logits, rtol=0, atol=0)


def test_the_accelerator_holds_no_precision():
    """Two runs of different precision in one process: the accelerator is float32 for both."""
    for name in ("bf16", "no"):
        acc = Accelerator(cpu=True, mixed_precision="no")
        assert acc.mixed_precision == "no" and acc.scaler is None
        assert MixedPrecision.for_device(name, acc.device).name == name


def test_step_without_scaler_steps_the_optimizer():
    model, x, rgb = model_and_input()
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    precision = MixedPrecision.for_device("bf16", CPU)
    before = [p.detach().clone() for p in model.parameters()]
    precision.backward(precision.forward(model, x, rgb=rgb).logits.sum(), Accelerator(cpu=True))
    precision.step(optimizer)
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 with a loss scaler needs an accelerator")
def test_fp16_on_cuda_scales_the_loss():
    precision = MixedPrecision.for_device("fp16", torch.device("cuda"))
    assert precision.dtype == torch.float16 and precision.scaler is not None
