"""Which optional extra a command needs, said in one line when it is not installed.

A plain `pip install` brings numpy and onnxruntime: enough to predict and score CSVs. The
distribution is not on PyPI, so the line says how to add an extra from a clone of the
repository, never a package name that does not exist.
"""
from __future__ import annotations

import importlib.util

from cgpa_rnn.errors import UserError

CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"  # both extras bring torch; its default wheels bring CUDA
# Modules that only an extra brings, and which extra brings them.
EXTRAS = {"torch": "train", "pandas": "train", "onnx": "train", "onnxscript": "train", "matplotlib": "train",
          "tqdm": "train", "gradio": "demo", "gradio_client": "demo", "mcp": "mcp"}
# Each extra brings the ones before it.
EXTRA_INCLUDES = {"train": ("train",), "demo": ("train", "demo"), "mcp": ("train", "demo", "mcp")}


def extra_needed(command: str, module: str, extra: str | None = None) -> str | None:
    """The line for `command` missing `module` (from the named `extra`, else the one that brings
    it); None for a module no extra brings (a real bug, left to its traceback)."""
    top = module.split(".")[0]
    if top not in EXTRAS:
        return None
    extra = extra or EXTRAS[top]
    return (f'{command} needs the [{extra}] extra ({top} is not installed); from a clone of the repository: '
            f'pip install ".[{extra}]" (add --extra-index-url {CPU_TORCH_INDEX} for the CPU build of torch)')


def require(command: str, extra: str) -> None:
    """Refuse `command` in one line, before any work or output, when its extra is not installed."""
    for module, brought_by in EXTRAS.items():
        if brought_by in EXTRA_INCLUDES[extra] and importlib.util.find_spec(module) is None:
            raise UserError(extra_needed(command, module, extra))
