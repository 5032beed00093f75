"""`--data-on-device`: batches drawn from the cache held on the training device equal the
DataLoader's, and a run on them equals a run on the DataLoader. `--mixed-precision auto`."""

from __future__ import annotations

import json

import pytest
import torch

from shared.cache_schema import SkeletonCache
from stage2_train.data.dataset import JointSource, SkeletonDataset, make_loader
from stage2_train.training.device import resolve_mixed_precision
from stage2_train.data.device_batches import DeviceBatches
from stage2_train.data.features import load_features
from stage2_cache import write_tiny_cache
from stage2_run import ONE_EPOCH, train


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_cache(tmp_path_factory.mktemp("dev") / "cache", invalid_rgb=[1], invalid_text=[3])


def dataset(cache_dir, repeat=1) -> SkeletonDataset:
    cache = SkeletonCache(cache_dir)
    feats = load_features(cache_dir, None, cache, need_rgb=True, need_text=True)
    return SkeletonDataset(JointSource(cache), cache.split_indices("xsub", True), cache.labels, feats, repeat)


@pytest.mark.parametrize("batch_size,repeat", [(4, 1), (5, 2), (64, 1)])
def test_device_batches_equal_the_dataloader(tiny, batch_size, repeat):
    ds = dataset(tiny, repeat)
    loader = make_loader(ds, batch_size, True, workers=0, seed=7)
    device = DeviceBatches(ds, batch_size, seed=7, device=torch.device("cpu"))
    assert len(device) == len(loader) and device.nbytes > 0
    for epoch in range(2):
        loader.sampler.set_epoch(epoch)
        device.set_epoch(epoch)
        got, want = list(device), list(loader)
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.keys() == b.keys()
            for key in b:
                assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_each_process_takes_its_share_of_the_global_batch(tiny):
    ds = dataset(tiny)
    whole = list(DeviceBatches(ds, 6, seed=1, device=torch.device("cpu")))
    halves = [
        list(DeviceBatches(ds, 6, seed=1, device=torch.device("cpu"), process_index=p, num_processes=2)) for p in (0, 1)
    ]
    for w, h0, h1 in zip(whole, *halves):
        assert torch.equal(torch.cat([h0["index"], h1["index"]]), w["index"])
        t0 = int(h0["length"].max())
        assert torch.equal(h0["joints"], w["joints"][:3, :t0])


@pytest.mark.integration
def test_a_run_on_device_batches_equals_one_on_the_dataloader(tiny, tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text("base_channel: 8\n")
    runs = {}
    for name, flags in (("loader", ()), ("device", ("--data-on-device",))):
        work = train(tiny, tmp_path / name, *ONE_EPOCH, "--config", str(config), *flags)
        row = json.loads((work / "metrics.jsonl").read_text().splitlines()[0])
        row.pop("samples_per_s")
        runs[name] = row
    assert runs["device"] == runs["loader"]


@pytest.mark.parametrize(
    "device, native, expected",
    [
        ("cpu", True, "no"),
        ("cpu", False, "no"),  # CPU: float32 even with AVX512-BF16 or AMX
        ("cuda", True, "bf16"),
        ("cuda", False, "no"),  # CUDA: bf16 from Ampere on
    ],
)
def test_auto_precision_is_bf16_only_on_a_native_bf16_gpu(device, native, expected):
    asked = []

    def capability(d: torch.device) -> bool:
        asked.append(d.type)
        return native

    assert resolve_mixed_precision("auto", torch.device(device), native_bf16=capability) == expected
    assert asked in ([], [device])  # the check is consulted only where it can change the answer
    for explicit in ("no", "bf16", "fp16"):
        assert resolve_mixed_precision(explicit, torch.device(device), native_bf16=capability) == explicit


def test_auto_precision_on_this_cpu_is_float32():
    assert resolve_mixed_precision("auto", "cpu") == "no"
