"""The networks and what they are built from: the CTR-GCN backbone and its graph, FAM, FRM, the MMCL
model, the losses, and their torch-free configs (`model_config`, `loss_config`, `model_spec`)."""
