"""Self-describing checkpoints: weights plus everything needed to rebuild and trust them.

A checkpoint is a plain dict of tensors, numbers, strings and lists, saved with
torch.save and loaded with weights_only=True, so loading never runs pickled code.
"""
from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import torch

from cgpa_rnn.encoding import Scale
from cgpa_rnn.errors import UserError
from cgpa_rnn.model.config import TrainConfig
from cgpa_rnn.model.network import GradeForecaster
from cgpa_rnn.rundir import RunDir

FORMAT = "cgpa-rnn-checkpoint"
# 2: the damped-deviation prior and member-stacked weights; 3: the cohort's scale and group codes;
# 4: the cells' textbook names (W_xh, W_hh, b_h, W_hy, b_y; torch's own per member), the output layer in the cell;
# 5: the trajectory's calibration (horizon_scale, final_scale)
VERSION = 5


class CheckpointError(UserError):
    """The checkpoint is missing, truncated, corrupted or not one of ours."""


def save_checkpoint(run: RunDir, model: GradeForecaster, config: TrainConfig, info: dict) -> str:
    """Write the run's checkpoint atomically; returns its SHA-256. `info` holds data, split and metrics."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": config.to_dict(),
        "semesters": model.semesters,
        "colleges": model.college_codes.tolist(),
        "normalisation": {"mean": float(model.grade_mean), "std": float(model.grade_std)},
        "scale": model.scale.to_json(),
        "state_dict": model.state_dict(),
        "torch_version": str(torch.__version__),
        "trained_on": datetime.now(UTC).strftime("%Y-%m-%d"),  # the ONNX file's model_version
        **info,
    }
    with run.atomic(RunDir.CHECKPOINT) as temporary:
        torch.save(payload, temporary)
    return run.sha256(RunDir.CHECKPOINT)


def load_checkpoint(location: str | Path | RunDir) -> tuple[GradeForecaster, dict]:
    """The run's model in eval mode and the checkpoint's payload (config, data, metrics...)."""
    run = RunDir.of(location)
    path = run / RunDir.CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint here; train one with `cgpa train --out {run}`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "GLOBAL " in str(error):  # a pickle naming Python objects: it could run code when loaded
            raise CheckpointError(f"{path}: refused, it holds Python objects beyond tensors and plain values (a "
                                  "pickle that could run code when loaded); use a checkpoint `cgpa train` wrote"
                                  ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint, the file is truncated or corrupted "
                              f"({type(error).__name__}); retrain with `cgpa train`") from None
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint, the file is truncated or corrupted "
                              f"({type(error).__name__}); retrain with `cgpa train`") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cgpa-rnn checkpoint (no '{FORMAT}' format marker)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {payload.get('version')} is not supported "
                              f"(this code reads version {VERSION}); retrain it with `cgpa train --out {run}`")
    try:
        config = TrainConfig.from_dict(payload["config"])
        norm = payload["normalisation"]
        model = GradeForecaster(config.model, payload["semesters"], payload["colleges"], norm["mean"], norm["std"],
                                scale=Scale.from_json(payload["scale"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: the checkpoint does not match this code's model ({error})") from None
    model.eval()
    payload["sha256"] = run.sha256(RunDir.CHECKPOINT)
    return model, payload
