"""One predictor interface over two runtimes; this module needs only numpy and onnxruntime.

`Predictor` validates a student's raw grades and college code, runs the backend,
explains a forecast (cgpa_rnn.explanation) and forecasts the rest of the degree
(cgpa_rnn.trajectory).
`OnnxPredictor` runs model.onnx in onnxruntime;
`cgpa_rnn.model.torch_predictor.TorchPredictor` runs the checkpoint. The demo and
`cgpa predict` use both through this interface.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgpa_rnn.encoding import COLLEGE_CODES, DEFAULT_SCALE, Groups, Scale
from cgpa_rnn.errors import UserError
from cgpa_rnn.explanation import Explanation, ExplanationSession, explanation_of
from cgpa_rnn.metadata import DEFAULT_INTERVAL_LEVEL, MetadataError, check_graph, read_metadata
from cgpa_rnn.rules import last_observed
from cgpa_rnn.rundir import RunDir
from cgpa_rnn.trajectory import Trajectory, checked_credits, trajectory_of
from cgpa_rnn.values import COLLEGE_NAMES, grade_value, preview

UNFAMILIAR_SDS = 2.0  # grades whose mean is further than this from the training mean (in its spreads) get a warning


class PredictionError(UserError):
    """The grades or college code given cannot be scored; the message names the field."""


class StaleModelError(UserError):
    """model.onnx was exported from another checkpoint than the model.pt beside it."""


@dataclass(frozen=True)
class Prediction:
    semester: int  # 1-based number of the semester predicted
    prediction: float
    low: float  # the predictor's interval (interval_level: 80%)
    high: float
    actual: float | None = None  # the hidden semester's known grade when this is a hindcast


@dataclass(frozen=True)
class Question:
    row: np.ndarray  # float32 [S]: what the model sees, NaN for missing
    college: int
    semester: int  # 1-based number of the semester predicted
    actual: float | None  # its known grade when this is a hindcast, else None


def parse_grade(value, field: str, scale: Scale = DEFAULT_SCALE) -> float:
    """A grade from a form, a CSV cell or a number: NaN for blank, else a float on the scale."""
    try:
        return grade_value(value, scale)
    except ValueError as error:
        raise PredictionError(f"{field}: {error}") from None


class Predictor(ABC):
    """Backend-independent validation, prediction and forecasting."""

    semesters: int
    semester_names: list[str]
    colleges: list[int]  # the group codes seen in training
    training_data_sha256: str | None  # of the CSV the model was trained on; None for a synthetic cohort
    interval_level: float = DEFAULT_INTERVAL_LEVEL  # share of outcomes (low, high) is made to hold
    scale: Scale = DEFAULT_SCALE
    groups: Groups = COLLEGE_CODES
    training_grades: tuple[float, float] | None = None  # mean and spread of the training students' grades

    def semester_name(self, t: int) -> str:
        """Semester t (0-based) as its column names it: "G3", "5th semester"."""
        name = self.semester_names[t]
        return f"{name}{' semester' if re.fullmatch(r'[0-9]+(st|nd|rd|th)', name) else ''}"

    def semester_label(self, t: int) -> str:
        """How every field and answer names semester t: its name and the scale, "G3 (0-20)"."""
        return f"{self.semester_name(t)} ({self.scale})"

    def parse_college(self, value) -> int:
        """The graph's group code of a form field or cell (any value for a model without a group column)."""
        try:
            return self.groups.code(value)
        except ValueError as error:
            column = self.groups.column or "college"
            field = "college" if column.lower() in COLLEGE_NAMES else column
            raise PredictionError(f"{field}: {error}") from None

    @abstractmethod
    def _infer(self, grades: np.ndarray, college: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float32 [B, S] grades, int64 [B] codes -> prediction, low, high, each [B]."""

    @abstractmethod
    def _detail(self, grades: np.ndarray, college: np.ndarray, credits: np.ndarray | None,
                below: float | None) -> dict[str, np.ndarray]:
        """float32 [B, S] grades, int64 [B] codes, float32 [S] credits (None: equal), the risk's line (None:
        the scale's) -> cgpa_rnn.explanation.OUTPUTS and cgpa_rnn.trajectory.OUTPUTS by name."""

    def _parse(self, grades, college) -> tuple[np.ndarray, int]:
        if isinstance(grades, str):
            grades = grades.split(",")
        grades = list(np.ravel(np.asarray(grades, dtype=object)))
        if len(grades) > self.semesters:
            raise PredictionError(f"grades: the model knows {self.semesters} semesters, got {len(grades)} values")
        row = np.full(self.semesters, np.nan, dtype=np.float32)
        for t, value in enumerate(grades):
            row[t] = parse_grade(value, self.semester_label(t), self.scale)
        if np.isnan(row).all():
            raise PredictionError("grades: no grade given; enter at least one semester")
        return row, self.parse_college(college)

    def question(self, grades, college, hindcast_last_given: bool = False) -> Question:
        """What to predict from a form's values, validated once: the semester after the last one
        given. When the final semester is given too, or `hindcast_last_given` asks for it, the last semester
        given is predicted from the earlier ones instead (a hindcast: how close would the model
        have been?)."""
        row, code = self._parse(grades, college)
        observed = ~np.isnan(row)
        last = int(last_observed(observed[None, :])[0])
        if last < self.semesters - 1 and not hindcast_last_given:
            return Question(row, code, last + 2, None)
        if observed.sum() == 1:
            raise PredictionError(f"grades: only {self.semester_name(last)} is given; a hindcast needs earlier "
                                  "semesters to predict it from")
        earlier = row.copy()
        earlier[last] = np.nan
        return Question(earlier, code, last + 1, float(row[last]))

    def predict(self, grades, college, hindcast_last_given: bool = False) -> Prediction:
        question = self.question(grades, college, hindcast_last_given)
        prediction, low, high = self._infer(question.row[None, :], np.array([question.college], dtype=np.int64))
        return Prediction(question.semester, float(prediction[0]), float(low[0]), float(high[0]), question.actual)

    def explain(self, grades, college, hindcast_last_given: bool = False) -> Explanation:
        """The prediction `predict` makes, split into the prior and the network's correction, with
        the hidden state after each semester read."""
        question = self.question(grades, college, hindcast_last_given)
        outputs = self.detail_batch(question.row[None, :], np.array([question.college], dtype=np.int64))
        return explanation_of(outputs, question.semester, self.semester_names, question.actual)

    def detail_batch(self, grades: np.ndarray, college: np.ndarray, credits: np.ndarray | None = None,
                     below: float | None = None) -> dict[str, np.ndarray]:
        """Already-validated float32 [B, S] and int64 [B] (credits [S] and the risk's line optional) -> the
        explanation's and the trajectory's outputs by name."""
        return self._detail(np.ascontiguousarray(grades, dtype=np.float32),
                            np.ascontiguousarray(college, dtype=np.int64),
                            None if credits is None else checked_credits(credits, self.semesters), below)

    def predict_batch(self, grades: np.ndarray, college: np.ndarray):
        """Already-validated float32 [B, S] and int64 [B] -> prediction, low, high arrays."""
        return self._infer(np.ascontiguousarray(grades, dtype=np.float32),
                           np.ascontiguousarray(college, dtype=np.int64))

    def trajectory(self, grades, college, below=None, credits: np.ndarray | None = None) -> Trajectory:
        """Every semester after the last one given, the final CGPA and the chance of ending below `below` (a
        grade point; default: the scale's at-risk line). With the last semester given, the outcome itself."""
        row, code = self._parse(grades, college)
        line = self.risk_line(below)
        outputs = self.detail_batch(row[None, :], np.array([code], dtype=np.int64), credits, line)
        return trajectory_of(outputs, line)

    def risk_line(self, value=None) -> float:
        """The at-risk line from a field: a grade point on the model's scale (blank: the scale's own line)."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return self.scale.at_risk_line()
        try:
            line = grade_value(value, self.scale)  # the one number rule of the CLI, the demo and the page
        except ValueError:
            line = float("nan")
        if not self.scale.contains(line):
            raise PredictionError(f"at risk below: expected a grade point between {self.scale.low:g} and "
                                  f"{self.scale.high:g}, got {preview(value)}")
        return line + 0.0  # -0 is 0

    def unfamiliar(self, grades) -> str | None:
        """A warning, before any number, when grades are unlike the ones the model learnt from: their
        mean more than UNFAMILIAR_SDS training spreads from the training students' mean (a 4-point
        cohort scored by a 10-point model, a class far below or above the training cohort). None
        when they are alike, or the model file does not say what it learnt from."""
        values = np.asarray(grades, dtype=np.float64).ravel()
        values = values[~np.isnan(values)]
        return self.unfamiliar_mean(float(values.mean())) if values.size else None

    def unfamiliar_mean(self, average: float) -> str | None:
        """Predictor.unfamiliar for grades whose mean is `average` (a streamed file's running mean)."""
        if self.training_grades is None:
            return None
        mean, spread = self.training_grades
        distance = (average - mean) / spread
        if abs(distance) <= UNFAMILIAR_SDS:
            return None
        return (f"Warning: these grades average {average:.2f}, {abs(distance):.1f} standard deviations "
                f"{'below' if distance < 0 else 'above'} the students this model was trained on ({mean:.2f} ± "
                f"{spread:.2f} on its {self.scale} scale). Its forecasts here are extrapolation, not evidence: "
                "check the scale, or train a model on your own cohort (`cgpa train --data FILE --scale LOW-HIGH`, "
                "or the demo's \"Your model\" tab).")

    def is_known_college(self, college) -> bool:
        return self.parse_college(college) in self.colleges


def session_options(threads: int = 1):
    """onnxruntime's options for this project's graphs: tiny, so `threads` (one by default) runs them best."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Batch-1 calls are microseconds long: thread hand-offs would cost more than they save.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


class OnnxPredictor(Predictor):
    """model.onnx in onnxruntime, tuned for one student at a time; safe to share across threads."""

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise StaleModelError(f"{path}: no ONNX model here; create it with `cgpa export {path.parent}`")
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise StaleModelError(f"{path}: not a loadable ONNX model ({error}); re-export it with "
                                  f"`cgpa export {path.parent}`") from None
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        inputs = {i.name: (i.type, i.shape) for i in self.session.get_inputs()}
        try:
            check_graph(inputs, [o.name for o in self.session.get_outputs()], str(path))
            described = read_metadata(self.metadata, inputs["grades"][1], str(path))
        except MetadataError as error:
            raise StaleModelError(str(error)) from None
        self.semesters, self.semester_names = described.semesters, described.semester_names
        self.colleges, self.checkpoint_sha256 = described.colleges, described.checkpoint_sha256
        self.training_data_sha256, self.interval_level = described.training_data_sha256, described.interval_level
        self.scale, self.groups, self.training_grades = described.scale, described.groups, described.training_grades
        self.path, self.threads, self._explanation = path, threads, None

    def _infer(self, grades, college):
        prediction, low, high = self.session.run(None, {"grades": grades, "college": college})
        return prediction, low, high

    def _detail(self, grades, college, credits, below):
        if self._explanation is None:  # loaded when first asked: a forecast alone never needs it
            self._explanation = ExplanationSession(self.path, self.checkpoint_sha256, self.threads)
        return self._explanation.run(grades, college, credits, below)


def check_fresh(run: str | Path | RunDir, threads: int = 1) -> OnnxPredictor:
    """The run's ONNX predictor, refusing an export that does not match the checkpoint beside it."""
    run = RunDir.of(run)
    predictor = OnnxPredictor(run / RunDir.ONNX, threads)
    if not run.exists(RunDir.CHECKPOINT):
        raise StaleModelError(f"{run / RunDir.CHECKPOINT}: no checkpoint beside the ONNX file; "
                              f"train with `cgpa train --out {run}`")
    checkpoint_sha256 = run.sha256(RunDir.CHECKPOINT)
    if checkpoint_sha256 != predictor.checkpoint_sha256:
        raise StaleModelError(f"{run / RunDir.ONNX} is stale: it was exported from checkpoint "
                              f"{predictor.checkpoint_sha256[:12]}, but {run / RunDir.CHECKPOINT} is "
                              f"{checkpoint_sha256[:12]}; run `cgpa export {run}` and `cgpa verify {run}`")
    return predictor
