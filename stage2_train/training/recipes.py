"""Named recipes: what each changes from the defaults (TrainConfig's fields), per dataset where it
differs. `config.recipe_values` layers them; `configs/<dataset>/<recipe>.yaml` write them out."""

from __future__ import annotations

from typing import Any

# Each recipe lists what it changes from the defaults.
RECIPES: dict[str, dict[str, Any]] = {
    # MMCL's NTU recipe (the reference's configs) is the defaults themselves (OptimConfig:
    # 110 epochs, batch 200, lr 0.1, weight decay 4e-4, 5 warm-up epochs, steps 90 and 100).
    "mmcl": {},
    # CTR-GCN's own NTU recipe.
    "ctrgcn": dict(epochs=65, batch_size=64, steps=[35, 55]),
    # Sized for `./pipeline.sh` on 2 CPU cores: a narrow network on short windows, a few epochs.
    # Batches of 8 give the motion streams enough steps (16: near chance after 4 epochs).
    "demo": dict(epochs=4, batch_size=8, warmup=1, steps=[3], window=32, base_channel=16),
    # The other backbones' own NTU recipes, from their official configs (any backbone can train with
    # any recipe; configs/<dataset>/<recipe>.yaml pair each with its backbone). HD-GCN
    # (config/nturgbd*/joint_com_*.yaml, main.py): batch 64, 90 epochs, 5 warm-up epochs, then cosine
    # per step to lr x lr_ratio 0.001 = 1e-4; CTR-GCN's feeder and 64-frame windows.
    "hdgcn": dict(epochs=90, batch_size=64, steps=[], schedule="cosine", min_lr=1e-4),
    # ST-GCN++ (pyskl configs/stgcn++/stgcn++_ntu60_xsub_3dkp/j.py): 16 per GPU x 8 GPUs, 16 epochs of
    # the training set repeated 5 times (80 passes), wd 5e-4, no warm-up, cosine per step to 0,
    # 100-frame windows, tested on 10 clips (UniformSample num_clips=10, probabilities averaged).
    "stgcnpp": dict(
        epochs=16,
        repeat=5,
        batch_size=128,
        weight_decay=5e-4,
        warmup=0,
        steps=[],
        schedule="cosine",
        min_lr=0.0,
        window=100,
        test_clips=10,
    ),
    # ProtoGCN (configs/ntu{60,120}_xsub/j.py): one GPU of 16, lr 0.025, 150 epochs, wd 5e-4, no warm-up,
    # cosine per step to 0, 100-frame windows, tested on 10 clips.
    "protogcn": dict(
        epochs=150,
        batch_size=16,
        lr=0.025,
        weight_decay=5e-4,
        warmup=0,
        steps=[],
        schedule="cosine",
        min_lr=0.0,
        window=100,
        test_clips=10,
    ),
}

# CTR-GCN's NW-UCLA recipe; MMCL publishes none, so its MMCL runs use the same schedule.
_NW_UCLA = dict(
    epochs=65, batch_size=16, weight_decay=1e-4, warmup=5, steps=[50], window=52, repeat=5, augment="ucla-view"
)
DATASET_VARIANTS: dict[tuple[str, str], dict[str, Any]] = {
    ("ctrgcn", "nw-ucla"): _NW_UCLA,
    ("mmcl", "nw-ucla"): _NW_UCLA,
}


def default_recipe(dataset: str, use_fam: bool, use_frm: bool) -> str:
    if dataset == "demo":
        return "demo"
    return "mmcl" if (use_fam or use_frm) else "ctrgcn"
