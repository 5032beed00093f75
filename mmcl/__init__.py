"""The `mmcl` front door: one command group over both stages (see mmcl.cli)."""
