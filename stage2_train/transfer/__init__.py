"""Cross-dataset transfer: zero-shot evaluation and the class mapping between datasets."""
