"""The training loop and what it writes and reads: run log, run report, checkpoints, weight transfer for
`--init-from`, published weights, the device, and the resolved training config."""
