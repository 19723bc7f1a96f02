"""A run directory: the one place that knows its file names, reads and writes them.

Every command that makes or reads a model (train, evaluate, export, verify, bench, the
card, the demo, predict) goes through `RunDir`. Writes are atomic (a temporary file
beside the target, then one rename), so a reader sees the old file or the new one,
never half of one, and a crash leaves the previous model in place.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cgpa_rnn.errors import UserError
from cgpa_rnn.jsontext import MAX_CHARS, JsonError, bounded_loads


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise UserError(f"{path}: cannot write here ({error.strerror or error})") from None
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
    EXPLANATION = "explain.onnx"  # the why and the rest of the degree (cgpa_rnn.explanation, .trajectory)
    CONFIG = "config.json"
    METRICS = "metrics.json"
    EVALUATION = "evaluation.json"
    EVALUATION_REPORT = "evaluation.md"
    PARITY = "parity.json"
    VECTORS = "vectors.json"  # conformance vectors beside the ONNX file (export/vectors.py)
    BENCH = "bench.json"
    CARD = "MODEL_CARD.md"
    TRAINING_CURVE = "training_curve.png"
    PREDICTED_VS_ACTUAL = "predicted_vs_actual.png"

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._hashes: dict[str, tuple[tuple, str]] = {}

    FILES = (CHECKPOINT, ONNX, INT8, EXPLANATION, CONFIG, METRICS, EVALUATION, EVALUATION_REPORT, PARITY, VECTORS,
             BENCH, CARD, TRAINING_CURVE, PREDICTED_VS_ACTUAL)

    @classmethod
    def of(cls, location: str | Path | RunDir) -> RunDir:
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

    def check_writable(self) -> None:
        """Fail now, with one message, where files cannot be written (before minutes of work)."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path}: a file is in the way; give a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.path).close()
        except OSError as error:
            raise UserError(f"{self.path}: cannot write here ({error.strerror or error})") from None

    def read_json(self, name: str) -> dict | None:
        path = self.path / name
        if not path.is_file():
            return None
        size = path.stat().st_size
        if size > MAX_CHARS:  # refused before it is read
            raise JsonError(f"{path}: {size:,} bytes is over the {MAX_CHARS:,}-byte limit for JSON")
        return bounded_loads(path.read_text(encoding="utf-8", errors="replace"), str(path))

    def write_json(self, name: str, value) -> None:
        self.write_text(name, json.dumps(value, indent=2) + "\n")

    def write_text(self, name: str, text: str) -> None:
        with self.atomic(name) as temporary:
            temporary.write_text(text, encoding="utf-8")

    def atomic(self, name: str):
        return atomic_path(self.path / name)

    # A new training replaces the whole directory: all its files then describe one model,
    # whatever moment a crash comes at (the old files, or the new ones, never a mix).

    def staging(self) -> RunDir:
        """An empty directory beside this one to write a new model into (see `replace_with`)."""
        self._check_replaceable()
        for stale in self.path.parent.glob(f".{self.path.name}.new-*"):
            if not process_alive(stale.name.rsplit("-", 1)[1]):
                shutil.rmtree(stale, ignore_errors=True)  # left by a training that was killed
        staged = self.path.parent / f".{self.path.name}.new-{os.getpid()}"
        shutil.rmtree(staged, ignore_errors=True)
        try:
            staged.mkdir(parents=True)
        except OSError as error:
            raise UserError(f"{self.path}: cannot write a run directory here ({error.strerror or error})") from None
        return RunDir(staged)

    def _check_replaceable(self) -> None:
        if str(self.path) in ("", "."):
            raise UserError("--out: give a folder for the run (not the current directory)")
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--out {self.path}: a file is in the way; give a new or empty folder, or a run directory")
        if self.path.is_dir():
            foreign = sorted(p.name for p in self.path.iterdir() if p.name not in self.FILES
                             and not p.name.startswith("."))
            if foreign:
                more = ", ..." if len(foreign) > 3 else ""
                raise UserError(f"--out {self.path}: holds files that are not a run's "
                                f"({', '.join(foreign[:3])}{more}); "
                                "give a new or empty folder, or a run directory")

    def replace_with(self, staged: RunDir) -> None:
        """Make `staged` this run directory in one step where the system allows it."""
        if not self.path.exists():
            os.rename(staged.path, self.path)
        elif _exchange(staged.path, self.path):
            shutil.rmtree(staged.path)  # it now holds the previous model
        else:  # no atomic exchange: a crash between the two renames leaves the old model aside
            aside = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            os.rename(self.path, aside)
            os.rename(staged.path, self.path)
            shutil.rmtree(aside)
        self._hashes.clear()


def _exchange(first: Path, second: Path) -> bool:
    """Swap two directories atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_cwd, rename_exchange = -100, 2
    return renameat2(at_cwd, os.fsencode(first), at_cwd, os.fsencode(second), rename_exchange) == 0


def process_alive(pid: str | int) -> bool:
    """Whether a process of this machine still runs (for files named after the process that made them)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True
