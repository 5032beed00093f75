"""Recipes per backbone (issue #24 item 2): HD-GCN's, ST-GCN++'s and ProtoGCN's official settings as
data, the cosine schedule they train with (per optimisation step, as their references), and the
recipes that existed before unchanged to the bit."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from shared.errors import MMCLError
from stage2_train.training.config import TrainConfig, describe_recipe, resolve_config
from stage2_train.training.recipes import RECIPES
from stage2_train.training.optim_config import OptimConfig
from stage2_train.training.train import build_optimizer
from stage2_cache import write_tiny_cache
from stage2_run import ONE_EPOCH, SKELETON_ONLY, train

KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "warmup",
    "schedule",
    "min_lr",
    "window",
    "repeat",
)

# The official configs, read off (see shared/notes/BACKBONES.md):
OFFICIAL = {
    # HD-GCN config/nturgbd120-cross-subject/joint_com_21.yaml + main.py (lr_ratio 0.001 of 0.1)
    "hdgcn": (90, 64, 0.1, 0.9, True, 4e-4, 5, "cosine", 1e-4, 64, 1),
    # pyskl configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py: 16 x 8 GPUs, RepeatDataset x5 of 16 epochs
    "stgcnpp": (16, 128, 0.1, 0.9, True, 5e-4, 0, "cosine", 0.0, 100, 5),
    # ProtoGCN configs/ntu120_xsub/j.py
    "protogcn": (150, 16, 0.025, 0.9, True, 5e-4, 0, "cosine", 0.0, 100, 1),
}


@pytest.mark.parametrize("dataset", ["ntu60", "ntu120"])
@pytest.mark.parametrize("recipe", sorted(OFFICIAL))
def test_each_backbone_recipe_resolves_to_its_official_values(recipe, dataset):
    cfg = resolve_config(dataset, {}, {"recipe": recipe, "backbone": recipe})
    assert tuple(cfg.get(k) for k in KEYS) == OFFICIAL[recipe]
    assert cfg.recipe == recipe and cfg.model.backbone == recipe
    assert "cosine per step" in describe_recipe(recipe)


def test_any_backbone_trains_with_the_mmcl_recipe():
    for backbone in ("ctrgcn", "hdgcn", "stgcnpp", "protogcn"):
        cfg = resolve_config("ntu60", {}, {"backbone": backbone})
        assert (cfg.recipe, cfg.model.backbone, cfg.optim.epochs, cfg.optim.schedule) == ("mmcl", backbone, 110, "step")


# What the recipes that existed before #24's item 2 resolved to, pinned (their numbers must not move).
BEFORE = {
    ("ntu60", "mmcl"): (110, 200, 0.1, 4e-4, 5, (90, 100), 64, None, 1),
    ("ntu60", "ctrgcn"): (65, 64, 0.1, 4e-4, 5, (35, 55), 64, None, 1),
    ("demo", "demo"): (4, 8, 0.1, 4e-4, 1, (3,), 32, 16, 1),
    ("nw-ucla", "ctrgcn"): (65, 16, 0.1, 1e-4, 5, (50,), 52, None, 5),
    ("nw-ucla", "mmcl"): (65, 16, 0.1, 1e-4, 5, (50,), 52, None, 5),
}


@pytest.mark.parametrize("dataset,recipe", sorted(BEFORE))
def test_the_earlier_recipes_are_unchanged(dataset, recipe):
    cfg = resolve_config(dataset, {}, {"recipe": recipe})
    keys = ("epochs", "batch_size", "lr", "weight_decay", "warmup", "steps", "window", "base_channel", "repeat")
    assert tuple(cfg.get(k) for k in keys) == BEFORE[(dataset, recipe)]
    assert (cfg.optim.schedule, cfg.optim.lr_decay, cfg.optim.momentum, cfg.optim.nesterov) == ("step", 0.1, 0.9, True)
    # the per-epoch factors, as exact floats
    o = cfg.optim
    expected = [(e + 1) / o.warmup if e < o.warmup else 0.1 ** sum(e >= s for s in o.steps) for e in range(o.epochs)]
    assert [o.lr_factor(e) for e in range(o.epochs)] == expected


def test_a_config_saved_before_the_schedule_setting_loads_as_step():
    old = {k: v for k, v in TrainConfig().to_dict().items() if k not in ("schedule", "min_lr")}
    assert TrainConfig.from_dict(old).optim.schedule == "step"


def test_the_step_schedule_still_steps_per_epoch():
    o = TrainConfig.from_dict({"epochs": 8, "warmup": 2, "steps": [4, 6]})
    model = torch.nn.Linear(2, 2)
    optimizer, scheduler = build_optimizer(o, model, steps_per_epoch=5)
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    assert lrs == [0.1 * f for f in (0.5, 1.0, 1.0, 1.0, 0.1, 0.1, 0.1**2, 0.1**2)]


def hdgcn_reference_lr(base_lr, lr_ratio, warm_up_epoch, num_epoch, loader_len, epoch, idx):
    """HD-GCN main.py's adjust_learning_rate, restated (epoch 0-based, idx the batch within it)."""
    if epoch < warm_up_epoch:
        return base_lr * (epoch + 1) / warm_up_epoch
    t_max = loader_len * (num_epoch - warm_up_epoch)
    t_cur = loader_len * (epoch - warm_up_epoch) + idx
    eta_min = base_lr * lr_ratio
    return eta_min + 0.5 * (base_lr - eta_min) * (1 + math.cos(t_cur / t_max * math.pi))


def test_cosine_lr_per_step_matches_hdgcn_formula():
    o = OptimConfig(epochs=9, warmup=3, schedule="cosine", min_lr=1e-4, lr=0.1)
    spe = 7
    for epoch in range(9):
        for idx in range(spe):
            assert o.lr_at(epoch * spe + idx, spe) == pytest.approx(
                hdgcn_reference_lr(0.1, 1e-3, 3, 9, spe, epoch, idx), rel=1e-12, abs=1e-15
            )


def test_cosine_schedule_through_the_optimiser_matches_torch_cosine_annealing():
    """No warm-up (pyskl's): our per-step LambdaLR gives torch's CosineAnnealingLR over all steps."""
    cfg = TrainConfig.from_dict(
        {"epochs": 4, "warmup": 0, "steps": [], "schedule": "cosine", "min_lr": 0.001, "lr": 0.1}
    )
    spe = 6
    ours_opt, ours = build_optimizer(cfg, torch.nn.Linear(2, 2), steps_per_epoch=spe)
    ref_opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(ref_opt, T_max=4 * spe, eta_min=0.001)
    for _ in range(4 * spe):
        assert ours_opt.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
        ours_opt.step()
        ours.step()
        ref_opt.step()
        ref.step()
    assert ours_opt.param_groups[0]["lr"] == pytest.approx(0.001)  # the end: min_lr


def test_cosine_with_warmup_holds_each_warmup_epoch_then_starts_at_lr():
    o = OptimConfig(epochs=4, warmup=2, schedule="cosine", lr=0.2, min_lr=0.0)
    assert [o.lr_at(i, 3) for i in range(6)] == pytest.approx([0.1, 0.1, 0.1, 0.2, 0.2, 0.2])
    assert o.lr_at(6, 3) == pytest.approx(0.2) and o.lr_at(9, 3) == pytest.approx(0.1)
    assert o.lr_factor_at(100, 3) == pytest.approx(0.0)  # past the end: stays at min_lr


def test_unknown_schedule_is_refused():
    with pytest.raises(MMCLError, match="schedule"):
        resolve_config("ntu60", {}, {"schedule": "linear"})


def test_a_cosine_run_sets_the_rate_each_step_and_resumes_exactly(tmp_path):
    cache = write_tiny_cache(tmp_path / "cache")
    flags = (
        *ONE_EPOCH[2:],
        *SKELETON_ONLY,
        "--base-channel",
        "8",
        "--schedule",
        "cosine",
        "--min-lr",
        "0.01",
        "--log-every",
        "1",
        "--seed",
        "2",
    )
    straight = train(cache, tmp_path / "straight", *flags, "--epochs", "2")
    steps = [json.loads(line) for line in (straight / "steps.jsonl").read_text().splitlines()]
    o = TrainConfig.from_dict({"epochs": 2, "warmup": 0, "schedule": "cosine", "min_lr": 0.01})
    assert [s["lr"] for s in steps] == pytest.approx([o.optim.lr_at(i, 2) for i in range(4)])
    # stopped after epoch 1 of 2 (the schedule spans both epochs), then resumed
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.copy(resumed / "checkpoints" / "epoch-001.pt", resumed / "last.pt")
    train(cache, resumed, *flags, "--epochs", "2", "--resume")
    rows = [[json.loads(r) for r in (w / "metrics.jsonl").read_text().splitlines()] for w in (straight, resumed)]
    for r in (*rows[0], *rows[1]):
        r.pop("samples_per_s")
    assert rows[0] == rows[1] and len(rows[0]) == 2
    a, b = (torch.load(w / "last.pt", weights_only=False)["model"] for w in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_recipes_are_data():
    assert {"hdgcn", "stgcnpp", "protogcn"} <= set(RECIPES)
