"""ModelSpec round-trips through a plain dict that torch.load(weights_only=True) reads back."""

import io

import pytest
import torch

from stage2_train.models.model_config import CTRGCNConfig, MMCLModelConfig
from stage2_train.models.model_spec import FORMAT, FeatureIdentity, InputSpec, ModelSpec


def test_round_trip_weights_only():
    spec = ModelSpec(
        model=MMCLModelConfig(backbone=CTRGCNConfig(num_class=2, num_point=25, num_person=2, graph="ntu25")),
        input=InputSpec("ntu25", 2, 25, 3, 64, "joint", "crop-rotate", 0.95, 1),
        dataset="ntu60",
        protocol="xsub",
        class_names=["a", "b"],
        ntu_ids=[1, None],
        features=FeatureIdentity("tiny", "f.h5", {"rgb_model": "m"}, ["q"], 8, 4),
    )
    buf = io.BytesIO()
    torch.save(spec.to_dict(), buf)
    buf.seek(0)
    d = torch.load(buf, weights_only=True)
    assert d["format"] == FORMAT and ModelSpec.from_dict(d) == spec


def test_other_format_fails():
    with pytest.raises(ValueError, match=FORMAT):
        ModelSpec.from_dict({"format": "junk"})
