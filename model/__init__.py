"""Networks, training, checkpoints, baselines, evaluation and the model card."""
