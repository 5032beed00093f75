"""The ablation study: runs (`ablate`) and their tables and chart (`report`)."""
