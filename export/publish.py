"""`cgpa publish RUN --out DIR`: a folder laid out as a Hugging Face model repository holds it.

Nothing is uploaded here: the folder is what `hf upload USER/NAME DIR` sends. An ONNX
user finds `model.onnx` at the top, `vectors.json` beside it to check an integration
with, and the model card as README.md, whose metadata says the repository holds an
ONNX model (`library_name: onnx`; the run directory's own card describes the PyTorch
checkpoint). The checkpoint and the training files stay in the run directory.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from cgpa_rnn.errors import UserError
from cgpa_rnn.predictor import check_fresh
from cgpa_rnn.rundir import RunDir

MARKER = ".cgpa-hub-folder"  # written into every folder this command makes: only those are replaced


def hub_card(run: RunDir) -> str:
    card = (run / RunDir.CARD).read_text(encoding="utf-8")
    if "\nlibrary_name: pytorch\n" not in card:
        raise UserError(f"{run / RunDir.CARD} has no model-card metadata block; run `cgpa export {run}` again")
    return card.replace("\nlibrary_name: pytorch\n", "\nlibrary_name: onnx\n", 1)


def publish(run: str | Path | RunDir, out: str | Path) -> list[str]:
    """Write the Hub folder at `out` (replacing only an earlier one of ours); return its file names."""
    run, out = RunDir.of(run), Path(out)
    check_fresh(run)  # a stale model.onnx is never published
    for name in (RunDir.ONNX, RunDir.VECTORS, RunDir.CARD):
        if not (run / name).is_file():
            raise UserError(f"{run / name} is missing; run `cgpa export {run}` first")
    if out.exists() and not (out.is_dir() and ((out / MARKER).is_file() or not any(out.iterdir()))):
        raise UserError(f"{out} exists and is not a folder this command wrote; choose an empty or new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name in (RunDir.ONNX, RunDir.INT8, RunDir.EXPLANATION, RunDir.VECTORS):
            if (run / name).is_file():
                shutil.copyfile(run / name, staging / name)
        (staging / "README.md").write_text(hub_card(run), encoding="utf-8")
        (staging / MARKER).write_text("written by cgpa publish; the folder is replaced as a whole\n")
        RunDir(out).replace_with(RunDir(staging))  # in one step where the system allows it
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(p.name for p in out.iterdir() if p.name != MARKER)
