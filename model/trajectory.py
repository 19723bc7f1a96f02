"""The rest of the degree in torch: every remaining semester, the final CGPA, the risk of ending below a line.

The median path feeds each forecast median back as the next semester's grade, so the
recurrent network and the prior read a forecast exactly as they read a known grade.
Its interval widens with the horizon: the one-step gaps of the semesters on the way
(each semester's own interval, model.onnx's at the first) add up in quadrature, as
independent errors would, and a factor per horizon, calibrated on held-out students
like the one-step interval (model/fitting.py), makes each horizon cover 80%: the
factor of horizon 1 is 1, so the path's first semester is model.onnx's prediction.

The final CGPA is the credit-weighted mean over every semester: the known grades, the
forecast medians, and for a semester missing before the last known one (a gap) its
one-step median, with that semester's one-step interval. Its interval sums the unknown
semesters' widths linearly (a student's semesters move together, mostly) and is scaled
per number of unknown semesters, each side on its own, so each end is a 10% or 90%
quantile. The probability of ending below a line reads those three quantiles as a
two-piece normal. A student with every semester known has an outcome: the interval
closes on the actual CGPA and the probability is 0 or 1.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from cgpa_rnn.model.config import INTERVAL_LEVEL
from cgpa_rnn.model.network import GradeForecaster, Parts, last_observed, level_step

# An 80% interval's half-width in standard deviations of a normal: its 90% quantile.
INTERVAL_Z = math.sqrt(2) * torch.erfinv(torch.tensor(INTERVAL_LEVEL)).item()
MIN_CALIBRATION = 20  # held-out examples a horizon needs for its own factor; fewer take the pooled one


class Paths(NamedTuple):
    """The median path and its unscaled widths, semester 2..S ([B, S-1]: index j predicts semester j+2)."""

    median: torch.Tensor  # [B, S-1] the forecast medians (known semesters: their one-step prediction)
    unit_low: torch.Tensor  # [B, S-1] the one-step gaps below the median, added in quadrature since the last known
    unit_high: torch.Tensor
    future: torch.Tensor  # [B, S-1] bool: a semester after the last observed one
    horizon: torch.Tensor  # [B, S-1] long: how many semesters after the last observed one (1..S-1; 1 where not future)
    final: torch.Tensor  # [B] the credit-weighted mean of the known grades and the medians of the unknown ones
    final_unit_low: torch.Tensor  # [B] the unknown semesters' unit widths, credit-weighted, over all credits
    final_unit_high: torch.Tensor
    unknown: torch.Tensor  # [B] long: semesters 2..S not observed, after the last observed one or gaps (0: finished)
    valid: torch.Tensor  # [B] bool: at least one grade observed


def paths(model: GradeForecaster, grades: torch.Tensor, college: torch.Tensor, credits: torch.Tensor | None = None,
          weights: torch.Tensor | None = None) -> Paths:
    """`credits` [S] weight each semester in the final CGPA (default: equal); `weights` [E, B] combine the
    members per student (calibration's held-out ensembles; default: all members alike)."""
    S = model.semesters
    observed = ~torch.isnan(grades)
    last = last_observed(observed)
    future = torch.arange(1, S) > last[:, None]
    low, median, high = rolled_quantiles(model, grades, college, future, weights).unbind(-1)
    unit_low = torch.sqrt(torch.cumsum((median - low).square() * future, dim=1))
    unit_high = torch.sqrt(torch.cumsum((high - median).square() * future, dim=1))
    # Semester 1 is never predicted: missing, it is left out of the final CGPA; every later unknown one is estimated.
    unknown = ~observed[:, 1:]
    gap_low = torch.where(future, unit_low, median - low)  # a gap: its own one-step interval
    gap_high = torch.where(future, unit_high, high - median)
    # Relative weights: divided by the largest, so no product overflows whatever the credits' size.
    credit = torch.ones(S, dtype=grades.dtype) if credits is None else credits / credits.max()
    counted = torch.cat([observed[:, :1], torch.ones_like(unknown)], dim=1)
    values = torch.where(observed, grades, torch.cat([torch.zeros_like(grades[:, :1]), median], dim=1))
    weight = credit * counted
    total = weight.sum(1).clamp(min=1e-9)
    final = (torch.where(counted, values, torch.zeros_like(values)) * weight).sum(1) / total
    unknown_weight = credit[1:] * unknown
    return Paths(median, unit_low, unit_high, future, (torch.arange(1, S) - last[:, None]).clamp(1, S - 1), final,
                 (unknown_weight * gap_low).sum(1) / total, (unknown_weight * gap_high).sum(1) / total,
                 unknown.sum(1), last >= 0)


def rolled_quantiles(model: GradeForecaster, grades: torch.Tensor, college: torch.Tensor, future: torch.Tensor,
                     weights: torch.Tensor | None = None) -> torch.Tensor:
    """model.all_steps's quantiles [B, S-1, HEADS] in grade points, each semester in `future` ([B, S-1]: semesters
    2..S) read as the median the step before predicted for it. One pass: the network and the prior are causal,
    so each step needs only the medians before it."""
    S = model.semesters
    alpha = torch.sigmoid(model.prior_smoothing + model.smoothing)
    level = grades.new_zeros(model.members, grades.shape[0])
    seen = torch.zeros(grades.shape[0], dtype=torch.bool)
    column = torch.arange(S)
    filled, state, points = grades, None, []
    for t in range(S - 1):
        steps, _, deviation, index = model.inputs(filled, college)
        h, state = model.recurrent.step(steps[:, t], state)
        level, seen = level_step(level, seen, deviation[:, t], ~torch.isnan(filled[:, t]), alpha)
        group = model.college_mean[index][:, t + 1] + model.prior_shift[index][:, t] + model.college_offset[:, index, t]
        parts = Parts(group[..., None], level[..., None], (model.prior_damping[t] + model.damping[:, t])[:, None, None],
                      h[:, :, None], model.recurrent.output(h[:, :, None]))
        step = model.in_points(model.quantiles(parts, model.interval_scale[t:t + 1]), weights)  # [B, 1, HEADS]
        points.append(step)
        fill = future[:, t:t + 1] & (column == t + 1)  # the next semester, where it is after the last observed one
        filled = torch.where(fill, step[:, :, 1], filled)
    return torch.cat(points, dim=1)


def trajectory(model: GradeForecaster, grades: torch.Tensor, college: torch.Tensor,
               credits: torch.Tensor | None = None, below: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """cgpa_rnn.trajectory.OUTPUTS by name, in grade points:

    trajectory, trajectory_low, trajectory_high  [B, S] each semester after the last observed one: the median
                                                 and the 80% interval (NaN for the others)
    final, final_low, final_high                 [B] the final CGPA and its 80% interval (the actual CGPA,
                                                 closed, when nothing is left to forecast)
    probability_below                            [B] of a final CGPA below `below` (default: the scale's line)
    NaN in every output for a student with no grade."""
    scale = model.scale
    p = paths(model, grades, college, credits)
    factor = model.horizon_scale[p.horizon - 1]
    nan = torch.full_like(p.median, float("nan"))
    column = torch.full_like(p.median[:, :1], float("nan"))  # semester 1 is never after the last observed one

    def path(values: torch.Tensor) -> torch.Tensor:
        return torch.cat([column, torch.where(p.future, values.clamp(scale.low, scale.high), nan)], dim=1)

    unknown = (p.unknown - 1).clamp(min=0, max=model.semesters - 2)
    below_final = p.final - model.final_scale[0, unknown] * p.final_unit_low  # the 10% and 90% quantiles
    above_final = p.final + model.final_scale[1, unknown] * p.final_unit_high
    final_low, final_high = below_final.clamp(scale.low, scale.high), above_final.clamp(scale.low, scale.high)
    line = torch.tensor(scale.at_risk_line(), dtype=grades.dtype) if below is None else below
    distance = line - p.final
    # From the quantiles before the scale's clamp: the clamp bounds the interval, not the spread of the outcome.
    spread = torch.where(distance < 0, p.final - below_final, above_final - p.final) / INTERVAL_Z
    normal = 0.5 * (1 + torch.erf(distance / (spread.clamp(min=1e-6) * math.sqrt(2))))
    probability = torch.where(spread > 1e-6, normal, (distance > 0).to(grades.dtype))
    valid = p.valid[:, None]
    outputs = {"trajectory": path(p.median), "trajectory_low": path(p.median - factor * p.unit_low),
               "trajectory_high": path(p.median + factor * p.unit_high)}
    outputs = {name: torch.where(valid, value, torch.full_like(value, float("nan"))) for name, value in outputs.items()}
    for name, value in (("final", p.final), ("final_low", final_low), ("final_high", final_high),
                        ("probability_below", probability)):
        outputs[name] = torch.where(p.valid, value, torch.full_like(value, float("nan")))
    return outputs


def cuts(grades: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every history a forecast starts from: for each student and each observed semester t with a later one
    observed, the grades up to t (later ones NaN). Returns the histories [K, S] and their student [K]."""
    observed = ~torch.isnan(grades)
    later = observed.flip(1).cumsum(1).flip(1) > observed.long()  # an observed semester after t
    student, t = torch.nonzero(observed & later, as_tuple=True)
    histories = grades[student]  # indexing copies
    histories[torch.arange(grades.shape[1])[None, :] > t[:, None]] = float("nan")
    return histories, student


@torch.no_grad()
def calibrate_trajectory(model: GradeForecaster, grades: torch.Tensor, college: torch.Tensor,
                         validation_rows: torch.Tensor) -> None:
    """Set horizon_scale (per horizon 2..S-1) so the held-out students' actual grades fall inside 80% of the
    time (the split-conformal score of model/fitting.py), and final_scale (per number of unknown semesters,
    each side alone) so their actual final CGPAs fall below the low end 10% of the time and above the high end
    10% of the time. Each student is forecast by the members that did not learn from them."""
    model.horizon_scale.fill_(1.0)
    model.final_scale.fill_(1.0)
    held_out = validation_rows.sum(0) > 0
    grades, college, validation_rows = grades[held_out], college[held_out], validation_rows[:, held_out]
    histories, student = cuts(grades)
    if len(student) == 0:
        return
    p = paths(model, histories, college[student], weights=validation_rows[:, student])
    actual = grades[student, 1:]
    score = torch.maximum((p.median - actual) / p.unit_low.clamp(min=1e-6),
                          (actual - p.median) / p.unit_high.clamp(min=1e-6))
    scored = p.future & ~torch.isnan(actual)
    for h in range(2, model.semesters):
        model.horizon_scale[h - 1] = _quantile(score[scored & (p.horizon == h)], score[scored & (p.horizon > 1)])
    complete = ~torch.isnan(grades[student]).any(1)  # the actual final CGPA is the mean of every semester
    final_actual = torch.nan_to_num(grades[student]).mean(1)
    sides = ((p.final - final_actual) / p.final_unit_low.clamp(min=1e-6),
             (final_actual - p.final) / p.final_unit_high.clamp(min=1e-6))
    one_side = 1 - (1 - INTERVAL_LEVEL) / 2  # 90%: each end leaves out 10%
    for side, score in enumerate(sides):
        for r in range(1, model.semesters):
            model.final_scale[side, r - 1] = _quantile(score[complete & (p.unknown == r)], score[complete], one_side)


def _quantile(scores: torch.Tensor, pooled: torch.Tensor, level: float = INTERVAL_LEVEL) -> float:
    """The `level` quantile of `scores`, or of `pooled` when they are too few (model/fitting.py's aim: the level
    itself)."""
    chosen = scores if scores.numel() >= MIN_CALIBRATION else pooled
    return float(torch.quantile(chosen, level).clamp(min=0.1)) if chosen.numel() else 1.0

