"""A run directory: the one place that knows its file names, reads and writes them.

Every command that makes or reads a model (train, evaluate, export, verify, bench, the
card, the demo, predict) goes through `RunDir`. Writes are atomic (a temporary file
beside the target, then one rename), so a reader sees the old file or the new one,
never half of one, and a crash leaves the previous model in place.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        # mkstemp makes the file private (0600); an artifact gets the permissions any new file of
        # the user's would, so a web server or a colleague can read it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


class RunDir:
    """The files of one trained model and what was measured about it."""

    CHECKPOINT = "model.pt"
    ONNX = "model.onnx"
    INT8 = "model.int8.onnx"
    CONFIG = "config.json"
    METRICS = "metrics.json"
    EVALUATION = "evaluation.json"
    EVALUATION_REPORT = "evaluation.md"
    PARITY = "parity.json"
    BENCH = "bench.json"
    CARD = "MODEL_CARD.md"
    TRAINING_CURVE = "training_curve.png"
    PREDICTED_VS_ACTUAL = "predicted_vs_actual.png"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._hashes: dict[str, tuple[tuple, str]] = {}

    @classmethod
    def of(cls, location: "str | Path | RunDir") -> "RunDir":
        return location if isinstance(location, RunDir) else cls(location)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def sha256(self, name: str) -> str:
        """The file's SHA-256, hashed again only when the file changed since the last call."""
        stat = (self.path / name).stat()
        key = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if name not in self._hashes or self._hashes[name][0] != key:
            self._hashes[name] = (key, file_sha256(self.path / name))
        return self._hashes[name][1]

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def write_json(self, name: str, value) -> None:
        self.write_text(name, json.dumps(value, indent=2) + "\n")

    def write_text(self, name: str, text: str) -> None:
        with self.atomic(name) as temporary:
            temporary.write_text(text, encoding="utf-8")

    def atomic(self, name: str):
        return atomic_path(self.path / name)
