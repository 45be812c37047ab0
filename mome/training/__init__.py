"""Training engine: data, partial-label loss, optimisation, checkpoints, fine-tuning, DDP."""
