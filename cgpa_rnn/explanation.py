"""The why of a forecast: what the prior says, what the network adds, and the hidden state it read.

Every prediction is the prior (the group's mean of the predicted semester, plus the student's
smoothed deviation from the group's means, damped by phi) plus the network's correction; the
two add up to it exactly. The recurrent network's hidden state after each semester is what
the correction was read from. `GradeForecaster.explain` computes it in torch; `explain.onnx`,
written beside model.onnx by `cgpa export` (a second small graph, so the served graph stays
lean: onnxruntime computes every node of a graph whatever outputs are asked for), computes
the same from the same raw inputs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cgpa_rnn import trajectory
from cgpa_rnn.values import COLLEGE_NAMES

EXPLANATION_FILE = "explain.onnx"  # also the trajectory's graph (cgpa_rnn.trajectory)
# The explanation graph's outputs, in order; each [batch] in grade points but `damping` (a
# factor) and `hidden` [batch, semesters - 1, members, hidden units].
OUTPUTS = ("prediction", "prior", "correction", "group_mean", "deviation", "damping", "hidden")


@dataclass(frozen=True)
class Explanation:
    semester: int  # 1-based number of the semester predicted
    prediction: float
    prior: float  # group_mean + the members' mean of damping x deviation (each member its own)
    correction: float  # prediction - prior: what the network adds
    group_mean: float  # the group's mean of the predicted semester, as the prior sees it
    deviation: float  # the student's smoothed deviation from the group's means so far (grade points; members' mean)
    damping: float  # phi: the share of that deviation expected to carry over (members' mean)
    hidden: list[list[list[float]]]  # after each semester up to the last one read: [member][unit]
    semesters_read: list[str]  # the name of each semester `hidden` follows
    actual: float | None = None  # the predicted semester's known grade, for a hindcast

    def to_dict(self) -> dict:
        """Every field; `actual` only for a hindcast."""
        return {name: value for name, value in asdict(self).items() if name != "actual" or value is not None}

    def sentence(self, semester_name: str, group: str) -> str:
        """One plain sentence: "The 5th semester average at college 115 is 7.00; this student has been
        0.40 above the group's averages so far (carried over: +0.30); the network adds +0.10, giving 7.40." """
        side = "above" if self.deviation >= 0 else "below"
        carried = self.prior - self.group_mean
        return (f"The {semester_name} average {group} is {self.group_mean:.2f}; this student has been "
                f"{abs(self.deviation):.2f} {side} the group's averages so far (carried over: {carried:+.2f}); "
                f"the network adds {self.correction:+.2f}, giving {self.prediction:.2f}.")


def group_phrase(predictor, college) -> str:
    """How the sentence names the student's group: "at college 115", "at school GP", "of the cohort"."""
    column = predictor.groups.column
    if column is None:
        return "of the cohort"
    name = "college" if column.strip().lower() in COLLEGE_NAMES else column
    if not predictor.is_known_college(college):
        return f"for a {name} not seen in training"
    return f"at {name} {str(college).strip()}"


def explanation_of(outputs: dict[str, np.ndarray], semester: int, semester_names: list[str],
                   actual: float | None = None) -> Explanation:
    """The first row of a batch of explanation outputs, for a student whose `semester` (1-based)
    is predicted: the hidden state after each semester before it."""
    read = semester - 1
    hidden = np.asarray(outputs["hidden"][0][:read], dtype=np.float64)
    return Explanation(semester, *(float(outputs[name][0]) for name in OUTPUTS[:-1]),
                       hidden=np.round(hidden, 6).tolist(), semesters_read=semester_names[:read], actual=actual)


class ExplanationSession:
    """explain.onnx in onnxruntime (the why and the trajectory), checked to come from the same checkpoint
    as model.onnx."""

    def __init__(self, model_path: str | Path, checkpoint_sha256: str, threads: int = 1):
        import onnxruntime as ort

        from cgpa_rnn.predictor import StaleModelError, session_options

        path = Path(model_path).with_name(EXPLANATION_FILE)
        if not path.is_file():
            raise StaleModelError(f"{path}: no explanation graph beside {Path(model_path).name}; "
                                  f"`cgpa export {path.parent}` writes it")
        options = session_options(threads)
        # onnxruntime warns, at every load, that an input with a default is not folded as a constant: by design.
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types for bad files
            raise StaleModelError(f"{path}: not a loadable ONNX model ({error}); re-export it with "
                                  f"`cgpa export {path.parent}`") from None
        stated = self.session.get_modelmeta().custom_metadata_map.get("checkpoint_sha256")
        if stated != checkpoint_sha256:
            raise StaleModelError(f"{path} is stale: it was exported from checkpoint {str(stated)[:12]}, "
                                  f"model.onnx from {checkpoint_sha256[:12]}; run `cgpa export {path.parent}`")
        self.outputs = [*OUTPUTS, *trajectory.OUTPUTS]
        names = [output.name for output in self.session.get_outputs()]
        optional = [i.name for i in self.session.get_overridable_initializers()]
        if names != self.outputs or optional != list(trajectory.OPTIONAL_INPUTS):
            raise StaleModelError(f"{path}: expected outputs {', '.join(self.outputs)} and optional inputs "
                                  f"{', '.join(trajectory.OPTIONAL_INPUTS)}, found {', '.join(names)} and "
                                  f"{', '.join(optional) or 'none'}; re-export it with `cgpa export {path.parent}`")

    def run(self, grades: np.ndarray, college: np.ndarray, credits: np.ndarray | None = None,
            below: float | None = None) -> dict[str, np.ndarray]:
        """The outputs by name; credits and below left out take the file's defaults."""
        feeds = {"grades": grades, "college": college}
        if credits is not None:
            feeds["credits"] = credits
        if below is not None:
            feeds["below"] = np.array(below, dtype=np.float32)
        return dict(zip(self.outputs, self.session.run(None, feeds)))
