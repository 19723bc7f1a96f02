"""torch -> ONNX export, verification against torch, the torch predictor and the benchmark.

The torch-free runtime that serves the exported file lives in the runtime package."""
