"""Evaluation: test-set scores, `mmcl test` on a checkpoint, score files, the ensemble, plots."""
