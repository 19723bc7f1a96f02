"""The runtime an embedder installs: reading and validating inputs, the run directory,
the onnxruntime predictor and CSV scoring. Only numpy and onnxruntime, never torch or
pandas, so `pip install cgpa-rnn` (no extras) is enough to score students."""
