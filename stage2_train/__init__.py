"""Stage 2: train the skeleton classifier (CTR-GCN) with MMCL's training-only heads.

FAM aligns the skeleton feature with a cached RGB embedding (contrastive), FRM rescales the
classifier scores with weights predicted from cached MLLM text features. Only the backbone is
exported; see `models.mmcl_model.MMCLModel.skeleton_model`.
"""
