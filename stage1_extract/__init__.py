"""Stage 1: offline feature extraction for MMCL.

Reads videos (or frame folders) and skeletons, builds one temporal image per sample, and caches what
training needs so that stage 2 never loads a large model: pooled RGB features (FAM's target), the
MLLM's P(yes) for instruction questions and a sentence embedding of its description (FRM's input).
"""
