"""The predictor interface over a torch checkpoint: the reference the ONNX file must match, and
the demo's torch side."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cgpa_rnn.explanation import OUTPUTS
from cgpa_rnn.model.checkpoint import load_checkpoint
from cgpa_rnn.model.config import INTERVAL_LEVEL
from cgpa_rnn.model.record import RunRecord
from cgpa_rnn.model.trajectory import trajectory
from cgpa_rnn.predictor import Predictor
from cgpa_rnn.rundir import RunDir


class TorchPredictor(Predictor):
    def __init__(self, run: str | Path | RunDir):
        self.model, self.payload = load_checkpoint(run)
        self.record = RunRecord.from_payload(self.payload)
        self.semesters = self.model.semesters
        self.colleges = self.model.college_codes.tolist()
        self.semester_names = self.record.data.semester_names
        self.scale, self.groups = self.model.scale, self.record.data.groups
        self.training_grades = (float(self.model.grade_mean), float(self.model.grade_std))
        self.training_data_sha256 = self.record.data.source.get("sha256")
        self.interval_level = INTERVAL_LEVEL  # the checkpoint's own quantiles, not an old ONNX file's fallback

    def _infer(self, grades: np.ndarray, college: np.ndarray):
        with torch.inference_mode():
            outputs = self.model(torch.from_numpy(grades), torch.from_numpy(college))
        return tuple(output.numpy() for output in outputs)

    def _detail(self, grades: np.ndarray, college: np.ndarray, credits, below):
        grades, college = torch.from_numpy(grades), torch.from_numpy(college)
        with torch.inference_mode():
            outputs = {name: value for name, value in self.model.explain(grades, college).items() if name in OUTPUTS}
            outputs |= trajectory(self.model, grades, college, None if credits is None else torch.from_numpy(credits),
                                  None if below is None else torch.tensor(below, dtype=torch.float32))
        return {name: value.numpy() for name, value in outputs.items()}
