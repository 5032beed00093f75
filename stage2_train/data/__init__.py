"""The data pipeline: the cached dataset, transforms and streams, cached features, batches held on the
device, the input layout, and their torch-free configs (`data_config`, `augment_config`)."""
