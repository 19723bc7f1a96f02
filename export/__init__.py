"""torch -> ONNX export, its verification against torch, conformance vectors, the benchmark,
the static site and the Hub folder. The torch-free runtime that serves the exported file is
cgpa_rnn itself; the torch predictor is cgpa_rnn.model.torch_predictor."""
