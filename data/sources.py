"""Where a cohort came from, recorded without any path: a name and a SHA-256 fingerprint.

Run directories, checkpoints and ONNX files travel (a Space, an embedder's app), so they
never carry a local path. The shipped file is recognised by its fingerprint, which lets
every command find it again; a user's own CSV is named for the reader and matched by
fingerprint when it is given again.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

from cgpa_rnn.rundir import file_sha256

SHIPPED_DATA = Path(__file__).resolve().parent / "student-semester-result.csv"


@cache
def shipped_sha256() -> str:
    return file_sha256(SHIPPED_DATA)


def csv_source(path: str | Path, sha256: str) -> dict:
    return {"kind": "csv", "name": Path(path).name, "sha256": sha256, "shipped": sha256 == shipped_sha256()}


def source_name(source: dict) -> str:
    """The file's name; checkpoints made before names were recorded kept a path instead."""
    return source.get("name") or Path(source.get("path", "data.csv")).name


def describe_source(source: dict) -> str:
    if source["kind"] == "synthetic":
        kind = f" {source['cohort']}" if "cohort" in source else ""
        return f"SYNTHETIC{kind} cohort (seed {source['seed']}, {source['students']} generated students)"
    shipped = ", the data set shipped in data/" if source.get("shipped") else ""
    return f"{source_name(source)} (sha256 {source['sha256'][:12]}{shipped})"
