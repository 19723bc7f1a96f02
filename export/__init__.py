"""torch -> ONNX export, verification, the torch-free predictor, batch scoring and the benchmark.

Importing this package (or export.predictor) never imports torch."""
