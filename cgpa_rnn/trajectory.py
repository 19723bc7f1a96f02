"""The rest of the degree, as a caller meets it: each remaining semester, the final CGPA, the risk.

explain.onnx computes it beside the why (model/trajectory.py says how, and why it is
calibrated), from the same raw inputs plus two optional ones: `credits` [semesters],
each semester's weight in the final CGPA (default: equal), and `below`, the line whose
risk is reported (default: the scale's at-risk line, Scale.at_risk_line). This module
needs only numpy: it turns a row of those outputs into a `Trajectory` and its words.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from cgpa_rnn.errors import UserError

# explain.onnx's trajectory outputs, after the explanation's (cgpa_rnn.explanation.OUTPUTS).
OUTPUTS = ("trajectory", "trajectory_low", "trajectory_high", "final", "final_low", "final_high",
           "probability_below")
OPTIONAL_INPUTS = ("credits", "below")


@dataclass(frozen=True)
class Trajectory:
    semesters: list[int]  # 1-based numbers of the semesters forecast (after the last known one)
    median: list[float]
    low: list[float]  # the 80% interval of each, widening with the horizon
    high: list[float]
    final: float  # the final CGPA: the credit-weighted mean of the known grades and the forecast medians
    final_low: float
    final_high: float
    below: float  # the line the risk is measured against
    probability_below: float  # of a final CGPA below it
    finished: bool  # nothing left to forecast: `final` is the actual CGPA, the probability 0 or 1

    def to_dict(self) -> dict:
        return asdict(self)

    def sentence(self, model) -> str:
        """The forecast in words, naming semesters as `model` (a Predictor) does: "Final CGPA after the 5th
        semester: 7.31 (80% interval 6.90 to 7.70); chance of ending below 6: 2%." """
        if self.finished:  # the graph's own comparison decides, in float32: a CGPA at the line is not below it
            side = "below" if self.probability_below == 1 else "at or above"
            return f"Final CGPA {self.final:.2f}, the actual one (nothing left to forecast): {side} {self.below:g}."
        after = (f" after the {model.semester_name(self.semesters[-1] - 1)}" if self.semesters
                 else ", its missing semesters estimated")
        return (f"Final CGPA{after}: {self.final:.2f} "
                f"({model.interval_level:.0%} interval {self.final_low:.2f} to {self.final_high:.2f}); chance of "
                f"ending below {self.below:g}: {percent(self.probability_below)}.")


def percent(probability: float) -> str:
    """A probability as people read it: '<1%', '37%', '>99%'."""
    if probability < 0.005:
        return "<1%"
    if probability > 0.995:
        return ">99%"
    return f"{probability:.0%}"


def trajectory_of(outputs: dict[str, np.ndarray], below: float, row: int = 0) -> Trajectory:
    """Row `row` of a batch of explain.onnx outputs as a Trajectory (the student has a grade)."""
    path = np.asarray(outputs["trajectory"][row], dtype=np.float64)
    ahead = np.flatnonzero(~np.isnan(path))
    finished = bool(outputs["final_low"][row] == outputs["final_high"][row])  # nothing left unknown
    values = {name: round(float(outputs[name][row]), 6) for name in OUTPUTS[3:]}
    return Trajectory([int(t) + 1 for t in ahead], *(np.round(outputs[name][row][ahead].astype(float), 6).tolist()
                                                     for name in OUTPUTS[:3]),
                      values["final"], values["final_low"], values["final_high"], float(below),
                      values["probability_below"], finished)


def credits_vector(text, semesters: int) -> np.ndarray | None:
    """`--credits 20,20,22,...`: one positive weight per semester of the model; None for equal credits."""
    if text is None or str(text).strip() == "":
        return None
    try:
        values = np.array([float(c) for c in str(text).split(",")], dtype=np.float64)
    except ValueError:
        raise UserError(f"credits: expected {semesters} numbers separated by commas, one per semester, got "
                        f"{str(text)[:60]!r}") from None
    return checked_credits(values, semesters, text)


def checked_credits(values, semesters: int, given=None) -> np.ndarray:
    """float32 [semesters] positive, finite weights, or a UserError naming what was given."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (semesters,) or not (np.isfinite(array).all() and (array > 0).all()
                                           and (array <= np.finfo(np.float32).max).all()):
        shown = given if given is not None else array.ravel()[:12].tolist()
        raise UserError(f"credits: expected {semesters} positive numbers (one per semester of the model), got "
                        f"{str(shown)[:60]!r}")
    return array.astype(np.float32)
