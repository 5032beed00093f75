"""The contract between stage 1 and stage 2: cache schema, dataset registry, skeleton layouts."""

__version__ = "0.1.0"
