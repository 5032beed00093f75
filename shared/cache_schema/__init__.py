"""The HDF5 cache layout shared by stage 1 (writer) and stage 2 (reader).

    cache/<dataset>/skeletons.h5
        attrs: schema_version, kind="skeletons", dataset, layout, num_person, num_joints,
               names_hash, dataset_card (JSON: title, classes, layout, persons, protocols),
               tool_version, created, source_root, params (JSON)
        samples/  name, label, subject, camera, setup, replication, frame_count, is_train/<protocol>
        skeleton/ joints (sum T, M, V, 3) f32, offsets (N+1,) i64, frame_index (sum T,) i32,
                  color_xy (sum T, M, V, 2) f32 with attr resolution=(W, H) where the dataset has it
        failures/ name, stage, reason
    cache/<dataset>/features/<name>.h5
        attrs: schema_version, kind="features", names_hash (of the skeleton file's names), ...
        samples/  name, index (row in skeletons.h5)
        rgb/      valid (N,) bool, pooled (N, D) f16, frames (N, K, D) f16 with `mmcl extract
                  --frame-features` (attribute frame_features), else (N, 0, D); stage 2 reads only pooled
        text/     valid (N,) bool, yes_prob (N, Q) f32 (NaN = undetermined), questions (Q,),
                  description (N,), embedding (N, D_text) f16
        classes/  name (C,), embedding (C, D_text) f16
        failures/ name, stage, reason

A feature file covers the skeleton file's samples in the same order. Partial files (chunks of a
running extraction, shards of a sharded one) have the same layout over a subset of rows, with
`samples/index` saying which, and attribute complete=False.
"""

from .common import (
    FEATURES_DIR,
    META_FIELDS,
    SCHEMA_VERSION,
    SKELETON_FILE,
    STR,
    names_hash,
    now,
    read_failures,
    write_failures,
)
from .features import (
    BLOCK_FIELDS,
    BlockField,
    BlockShape,
    FeatureBlock,
    FeatureFile,
    FeatureHeader,
    merge_feature_parts,
    check_rows,
    read_feature_arrays,
    read_feature_file,
    read_rows,
    same_feature_set,
    text_input,
    write_feature_file,
)
from .locate import dataset_dirs, feature_files, resolve_dataset_dir, resolve_features
from .skeletons import SkeletonCache, SkeletonCacheWriter

__all__ = [
    "BLOCK_FIELDS",
    "FEATURES_DIR",
    "META_FIELDS",
    "SCHEMA_VERSION",
    "SKELETON_FILE",
    "STR",
    "BlockField",
    "BlockShape",
    "FeatureBlock",
    "FeatureFile",
    "FeatureHeader",
    "SkeletonCache",
    "SkeletonCacheWriter",
    "dataset_dirs",
    "feature_files",
    "merge_feature_parts",
    "names_hash",
    "now",
    "read_failures",
    "read_feature_arrays",
    "read_feature_file",
    "read_rows",
    "check_rows",
    "resolve_dataset_dir",
    "resolve_features",
    "same_feature_set",
    "text_input",
    "write_failures",
    "write_feature_file",
]
