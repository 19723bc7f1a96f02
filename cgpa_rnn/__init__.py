"""cgpa-rnn under its one installed name.

This package itself is the runtime an embedder installs: reading and validating inputs,
the run directory, the onnxruntime predictor, CSV scoring and the `cgpa` command line.
It needs only numpy and onnxruntime, never torch or pandas, so `pip install cgpa-rnn`
(no extras) is enough to score students.

The training, export and demo code are its subpackages `cgpa_rnn.data`, `cgpa_rnn.model`,
`cgpa_rnn.export` and `cgpa_rnn.demo`. In the repository they live in the top-level
folders data/, model/, export/ and demo/ (the layout docs/DESIGN.md fixes); an install
maps those folders under this name (pyproject.toml's package-dir), and a checkout run in
place (a Hugging Face Space, `python -m demo`) finds them through the line below. Either
way nothing generic like `model` or `data` is importable at the top level.
"""
from pathlib import Path

__version__ = "0.1.0"  # pyproject.toml reads it from here; the ONNX file's producer_version

_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "model" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's own __path__)
