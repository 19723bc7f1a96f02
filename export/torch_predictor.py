"""Moved to model/torch_predictor.py; this name stays only until the files that import it follow."""
from cgpa_rnn.model.torch_predictor import TorchPredictor  # noqa: F401
