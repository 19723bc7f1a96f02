"""Moved to export/inputs.py; this name stays only until the files that import it follow."""
from cgpa_rnn.export.inputs import PARITY_SAMPLES, parity_inputs, prefixes, random_students  # noqa: F401
