"""`mmcl export`: the skeleton-only network as TorchScript and ONNX, equal to the trained S_M.

The checkpoint is a real 1-epoch run with FAM and FRM on, so the test also shows that their
heads (and the RGB/text inputs) stay out of the export.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from shared.errors import MMCLError
from shared.registry import DEMO
from stage2_train import cli
from stage2_train.training.checkpoint import load_checkpoint
from stage2_train.data.dataset import collate
from stage2_train.deploy.export import CARD_NAME, ExportConfig, ModelCard, export_checkpoint, quiet_torchscript

ATOL = 1e-5


@pytest.fixture(scope="module")
def run(feature_cache, mmcl_run) -> tuple[Path, Path]:
    """(cache dir, work dir) of the shared epoch of MMCL training (FAM + FRM) on the tiny cache."""
    return feature_cache, mmcl_run


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory) -> Path:
    _, work = run
    out = tmp_path_factory.mktemp("export") / "export"  # the shared run stays as it is
    result = CliRunner().invoke(cli.export, ["--checkpoint", str(work / "last.pt"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "verified against the trained model" in result.output and "onnx.checker passed" in result.output
    return out


@pytest.fixture(scope="module")
def trained(run):
    """The trained MMCLModel (heads included) and its checkpoint."""
    ckpt = load_checkpoint(run[1] / "last.pt")
    return ckpt.build_model(), ckpt


def s_m(model, x: torch.Tensor) -> np.ndarray:
    """The trained model's S_M, computed with the training-only heads present."""
    with torch.no_grad():
        return model(x)["logits"].numpy()


def inputs(run, card: ModelCard) -> dict[str, torch.Tensor]:
    """A random batch and a batch of real cached samples prepared as at test time."""
    from shared.cache_schema import SkeletonCache

    skeletons = SkeletonCache(run[0])
    items = [{"joints": skeletons.sample(i)["joints"], "label": 0, "index": i} for i in range(0, len(skeletons), 4)]
    real = card.input_pipeline()(collate(items))
    random = torch.randn(4, *card.input_shape, generator=torch.Generator().manual_seed(5))
    return {"random": random, "real": real}


def load_ts(path: Path):
    extra = {CARD_NAME: ""}
    with quiet_torchscript():
        return torch.jit.load(str(path), _extra_files=extra), extra[CARD_NAME]


# --------------------------------------------------------------------------- equality with S_M


def test_torchscript_equals_trained_s_m(run, exported, trained):
    model, _ = trained
    ts, _ = load_ts(exported / "model.ts")
    card = ModelCard.from_json((exported / "model.json").read_text(), "model.json")
    for kind, x in inputs(run, card).items():
        with torch.no_grad():
            got = ts(x).numpy()
        np.testing.assert_allclose(got, s_m(model, x), rtol=0, atol=ATOL, err_msg=kind)


def test_onnx_is_valid_and_equals_trained_s_m(run, exported, trained):
    path = exported / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["skeleton"] and [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    ort = pytest.importorskip("onnxruntime")  # a test extra; without it the checks above still run
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model, _ = trained
    card = ModelCard.from_json((exported / "model.json").read_text(), "model.json")
    for kind, x in inputs(run, card).items():
        got, expected = session.run(None, {"skeleton": x.numpy()})[0], s_m(model, x)
        # float32 kernels that sum in another order: equal to 1e-5 of the logits' scale (one
        # float32 ulp of a logit of 100 is 8e-6), and the probabilities to 1e-5 absolute.
        scale = max(1.0, float(np.abs(expected).max()))
        assert np.abs(got - expected).max() <= ATOL * scale, kind
        np.testing.assert_allclose(
            torch.softmax(torch.from_numpy(got), 1).numpy(),
            torch.softmax(torch.from_numpy(expected), 1).numpy(),
            rtol=0,
            atol=ATOL,
        )


def test_any_batch_size_runs(exported, trained):
    model, _ = trained
    ts, _ = load_ts(exported / "model.ts")
    for n in (1, 7):
        x = torch.randn(n, 3, 12, 25, 2)
        with torch.no_grad():
            assert ts(x).shape == (n, 9)
        np.testing.assert_allclose(ts(x).detach().numpy(), s_m(model, x), rtol=0, atol=ATOL)


# --------------------------------------------------------------------------- contents


def test_training_heads_are_not_exported(exported, trained):
    model, ckpt = trained
    assert any(k.startswith(("fam.", "frm.")) for k in ckpt.model)  # they were trained
    ts, _ = load_ts(exported / "model.ts")
    assert set(ts.state_dict()) == set(model.backbone.state_dict())
    graph = onnx.load(str(exported / "model.onnx")).graph
    assert not any(("fam" in i.name or "frm" in i.name) for i in graph.initializer)


def test_card_describes_the_input(exported, trained):
    _, ckpt = trained
    card_json = json.loads((exported / "model.json").read_text())
    assert card_json["format"] == "mmcl-export-2" and card_json["spec"] == ckpt.spec.to_dict()
    spec = card_json["spec"]
    assert spec["class_names"] == DEMO.class_names and spec["ntu_ids"] == [c.ntu_id for c in DEMO.classes]
    assert spec["input"] == {
        "layout": "ntu25",
        "num_person": 2,
        "num_point": 25,
        "channels": 3,
        "window": 12,
        "stream": "joint",
        "augment": "crop-rotate",
        "test_crop": 0.95,
        "origin_joint": 1,
        "test_clips": 1,
    }
    assert spec["model"]["backbone"]["num_class"] == 9 and spec["model"]["use_frm"]  # the trained model
    assert card_json["input"]["shape"] == ["batch", 3, 12, 25, 2]
    assert set(card_json["files"]) == {"torchscript", "onnx"}
    _, embedded = load_ts(exported / "model.ts")
    assert {**json.loads(embedded), "files": card_json["files"]} == card_json


def test_single_format_and_bad_checkpoint(run, tmp_path):
    _, work = run
    result = export_checkpoint(work / "last.pt", tmp_path / "ts", ExportConfig(formats=("torchscript",)))
    assert sorted(p.name for p in (tmp_path / "ts").iterdir()) == ["model.json", "model.ts"]
    assert result.max_abs_diff == {"torchscript": 0.0}
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(MMCLError, match="bad.pt"):
        export_checkpoint(bad, tmp_path / "bad")
    with pytest.raises(MMCLError, match="export formats"):
        ExportConfig(formats=("tflite",))


@pytest.mark.slow
def test_dynamo_exporter(run, tmp_path):
    """torch.export's ONNX path (about a minute of CPU): verified the same way."""
    pytest.importorskip("onnxruntime")
    _, work = run
    result = export_checkpoint(work / "last.pt", tmp_path, ExportConfig(formats=("onnx",), onnx_exporter="dynamo"))
    onnx.checker.check_model(str(result.paths["onnx"]), full_check=True)
    assert "onnxruntime" in result.max_abs_diff
