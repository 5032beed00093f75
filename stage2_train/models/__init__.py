"""The networks and what they are built from: the skeleton backbones side by side (CTR-GCN, HD-GCN,
ST-GCN++, ProtoGCN; `backbone` their interface, `backbones` their registry) with their graphs
(`graph`, `hierarchy`), FAM, FRM, the MMCL model, the losses, and their torch-free configs
(`model_config`, `loss_config`, `model_spec`)."""
