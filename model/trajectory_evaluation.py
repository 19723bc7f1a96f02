"""The rest of the degree, cross-validated: every remaining semester, the final CGPA and the risk.

Each fold forecasts from every cut of its held-out students (model/trajectory.cuts: a student's grades
up to an observed semester, the later ones hidden) and scores the forecasts against what the student
then got. The recurrent models forecast with model/trajectory.trajectory. The baselines are rolled
forward the same way the model's median path is: each one's own median fed back as the next
semester's grade. A baseline's 80% interval and its probability of ending below the line come from its
own residuals on the fold's TRAINING students' cuts (per horizon, per number of remaining semesters),
never from the held-out students it is scored on, as model/baselines.py does for one step.

The final CGPA, and so the risk, is scored only where it is known: cuts of students with every
semester observed (the actual final CGPA is the mean of all of them, equal credits).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from cgpa_rnn.encoding import Scale
from cgpa_rnn.model.baselines import Baseline
from cgpa_rnn.model.config import COVERAGE_KEY, QUANTILES, WIDTH_KEY
from cgpa_rnn.model.metrics import by_value, regression_metrics
from cgpa_rnn.rules import last_observed

ROLLED_BASELINES = ("persistence", "damped_deviation")
RISK_BASELINE = "damped_deviation"  # the baseline whose risk the model's is measured against
MIN_RESIDUALS = 5  # residuals a horizon needs for its own quantiles; fewer take the pooled ones (as baselines.py)
BIN_EDGES = np.arange(1, 10) / 10  # reliability bins [0, 0.1), ..., [0.9, 1.0]
DIGITS = 4


@dataclass
class Forecast:
    """One forecaster's rest of the degree from each of K cuts."""

    median: np.ndarray  # [K, S] each semester after the cut's last known one (NaN at or before it)
    low: np.ndarray  # [K, S] the 80% interval
    high: np.ndarray
    final: np.ndarray  # [K] the final CGPA
    final_low: np.ndarray
    final_high: np.ndarray
    probability_below: np.ndarray  # [K] of a final CGPA below the scale's at-risk line


@dataclass
class FoldForecasts:
    """Every forecaster's forecasts from the cuts of one fold's held-out students."""

    student: np.ndarray  # [K] cohort index of each cut's student
    last: np.ndarray  # [K] the cut's last known semester (0-based)
    base_rate: float  # share of the fold's complete training students whose final CGPA is below the line
    models: dict[str, Forecast]
    baselines: dict[str, Forecast]


def student_cuts(grades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """model/trajectory.cuts on numpy arrays: the histories [K, S] and their student [K]."""
    import torch  # here, not at the top: importing model.evaluate (the CLI's report formatting) stays torch-free

    from cgpa_rnn.model.trajectory import cuts

    histories, student = cuts(torch.from_numpy(grades))
    return histories.numpy(), student.numpy()


def roll_forward(baseline: Baseline, histories: np.ndarray, college: np.ndarray) -> np.ndarray:
    """[K, S]: each history with every semester after its last known one filled by the baseline's median,
    semester by semester, so a later forecast reads the earlier ones as known grades."""
    filled = histories.astype(np.float64)
    last = last_observed(~np.isnan(histories))
    rows = np.arange(len(filled))
    for semester in range(1, filled.shape[1]):
        pick = rows[(last >= 0) & (last < semester)]
        if len(pick):
            filled[pick, semester] = baseline.predict(filled, college, pick, np.full(len(pick), semester))
    return filled


def finals(filled: np.ndarray) -> np.ndarray:
    """The final CGPA of each row: the mean of its known and forecast grades (equal credits)."""
    counted = ~np.isnan(filled)
    return np.where(counted, filled, 0.0).sum(1) / np.maximum(counted.sum(1), 1)


def residual_pools(residual: np.ndarray, group: np.ndarray, groups: range) -> dict[int, np.ndarray]:
    """Per group (a horizon, a number of remaining semesters) its residuals, sorted; all of them pooled
    for a group with too few (no residual at all: a single zero, the interval closes on the median)."""
    pooled = np.sort(residual) if len(residual) else np.zeros(1)
    return {g: np.sort(residual[group == g]) if (group == g).sum() >= MIN_RESIDUALS else pooled for g in groups}


def _offsets(pools: dict[int, np.ndarray], group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 10% and 90% residual quantiles of each entry's group: what its median adds for its interval."""
    table = np.zeros((max(pools) + 1, 2))
    for g, residuals in pools.items():
        table[g] = np.quantile(residuals, (QUANTILES[0], QUANTILES[-1]))
    return table[group, 0], table[group, 1]


def baseline_forecast(baseline: Baseline, train_grades: np.ndarray, train_college: np.ndarray,
                      histories: np.ndarray, college: np.ndarray, scale: Scale) -> Forecast:
    """A fitted baseline rolled forward from each history, its interval and risk from its training residuals."""
    S = histories.shape[1]
    train_histories, train_student = student_cuts(train_grades)
    train_filled = roll_forward(baseline, train_histories, train_college[train_student])
    train_last = last_observed(~np.isnan(train_histories))
    actual = train_grades[train_student].astype(np.float64)
    horizon = np.arange(S) - train_last[:, None]
    scored = (horizon > 0) & ~np.isnan(actual)
    steps = residual_pools((actual - train_filled)[scored], horizon[scored], range(1, S))
    complete = ~np.isnan(actual).any(1)
    ends = residual_pools((actual.mean(1) - finals(train_filled))[complete], (S - 1 - train_last)[complete],
                          range(1, S))

    filled = roll_forward(baseline, histories, college)
    last = last_observed(~np.isnan(histories))
    horizon = np.arange(S) - last[:, None]
    below, above = _offsets(steps, np.clip(horizon, 0, S - 1))
    final, remaining = finals(filled), S - 1 - last
    final_below, final_above = _offsets(ends, remaining)
    # P(final + r < line) over the training residuals r of the same number of remaining semesters.
    line, probability = scale.at_risk_line(), np.zeros(len(final))
    for r, residuals in ends.items():
        pick = remaining == r
        probability[pick] = np.searchsorted(residuals, line - final[pick], side="left") / len(residuals)

    def future(values: np.ndarray) -> np.ndarray:
        return np.where(horizon > 0, values, np.nan)

    def on_scale(values: np.ndarray) -> np.ndarray:  # as the model's: no interval promises a grade nobody gets
        return np.clip(values, scale.low, scale.high)

    return Forecast(future(filled), future(on_scale(filled + below)), future(on_scale(filled + above)), final,
                    on_scale(final + final_below), on_scale(final + final_above), probability)


def model_forecast(model, histories: np.ndarray, college: np.ndarray, scale: Scale) -> Forecast:
    """The trained model's trajectory from each history (model/trajectory.trajectory), in numpy."""
    import torch

    from cgpa_rnn.model.trajectory import trajectory

    with torch.no_grad():
        out = trajectory(model, torch.from_numpy(histories), torch.from_numpy(college),
                         below=torch.tensor(scale.at_risk_line(), dtype=torch.float32))
    out = {name: value.numpy().astype(np.float64) for name, value in out.items()}
    return Forecast(out["trajectory"], out["trajectory_low"], out["trajectory_high"], out["final"],
                    out["final_low"], out["final_high"], out["probability_below"])


def forecast_fold(cohort, fold, models: dict, baselines: dict[str, Baseline]) -> FoldForecasts:
    """Every cut of the fold's test students forecast by each trained model (cell -> model) and each
    rolled-forward baseline (name -> fitted on the fold's training students)."""
    train_grades, train_college = cohort.grades[fold.train], cohort.college[fold.train]
    histories, student = student_cuts(cohort.grades[fold.test])
    college = cohort.college[fold.test][student]
    complete = train_grades[~np.isnan(train_grades).any(1)]
    base_rate = float((complete.mean(1) < cohort.scale.at_risk_line()).mean()) if len(complete) else float("nan")
    if not len(student):  # no test student with two grades: nothing to forecast from
        return FoldForecasts(student, np.zeros(0, dtype=np.int64), base_rate, {}, {})
    scale = cohort.scale
    return FoldForecasts(fold.test[student], last_observed(~np.isnan(histories)), base_rate,
                         {cell: model_forecast(model, histories, college, scale) for cell, model in models.items()},
                         {name: baseline_forecast(fitted, train_grades, train_college, histories, college, scale)
                          for name, fitted in baselines.items() if name in ROLLED_BASELINES})


def brier(probability: np.ndarray, outcome: np.ndarray) -> float:
    """Mean squared gap between the probability and the 0/1 outcome: 0 for a perfect forecaster."""
    return float(np.mean((probability - outcome) ** 2)) if len(outcome) else float("nan")


def reliability(probability: np.ndarray, outcome: np.ndarray) -> list[dict]:
    """Per bin of predicted probability: n, the mean prediction and the observed share (equal when calibrated)."""
    bins = np.digitize(probability, BIN_EDGES)
    rows = []
    for b in range(len(BIN_EDGES) + 1):
        pick = bins == b
        rows.append({"bin": f"[{b / 10:.1f}, {(b + 1) / 10:.1f}{']' if b == len(BIN_EDGES) else ')'}",
                     "n": int(pick.sum()), "mean_predicted": float(probability[pick].mean()) if pick.any() else None,
                     "observed": float(outcome[pick].mean()) if pick.any() else None})
    return rows


def horizon_metrics(forecast: Forecast, actual: np.ndarray, last: np.ndarray) -> dict:
    """Per horizon (semesters after the cut's last known one, as text): n, MAE, coverage80, width80."""
    horizon = np.arange(actual.shape[1]) - last[:, None]
    scored = (horizon > 0) & ~np.isnan(actual)
    return by_value(forecast.median[scored], actual[scored], horizon[scored], forecast.low[scored],
                    forecast.high[scored])


def final_metrics(forecast: Forecast, actual_final: np.ndarray, complete: np.ndarray, remaining: np.ndarray) -> dict:
    """The final CGPA's errors and interval on the complete students' cuts, overall and per number of
    remaining semesters (each calibrated on its own)."""
    picked = [value[complete] for value in (forecast.final, actual_final, forecast.final_low, forecast.final_high)]
    metrics = regression_metrics(*picked)
    metrics["by_remaining"] = by_value(picked[0], picked[1], remaining[complete], picked[2], picked[3])
    return metrics


def _concatenate(parts: list[Forecast]) -> Forecast:
    return Forecast(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Forecast)))


def summarise_trajectories(cohort, folds: list[FoldForecasts], model: str) -> dict:
    """evaluation.json's "trajectory": per forecaster the per-horizon, final-CGPA and risk scores over all
    folds' cuts, with the base rate's Brier score for scale; `model` names the default cell."""
    folds = [f for f in folds if len(f.student)]
    student = np.concatenate([f.student for f in folds]) if folds else np.zeros(0, dtype=np.int64)
    last = np.concatenate([f.last for f in folds]) if folds else np.zeros(0, dtype=np.int64)
    base_rate = np.concatenate([np.full(len(f.student), f.base_rate) for f in folds]) if folds else np.zeros(0)
    actual = cohort.grades[student].astype(np.float64)
    complete = ~np.isnan(actual).any(1)
    actual_final = actual.mean(1)  # NaN where not complete, never read there
    line = cohort.scale.at_risk_line()
    outcome = (actual_final[complete] < line).astype(np.float64)
    report = {"model": model, "line": line, "cuts": int(len(student)),
              "risk": {"n": int(complete.sum()), "observed_below": float(outcome.mean()) if len(outcome) else None,
                       "base_rate": float(base_rate[complete].mean()) if complete.any() else None,
                       "base_rate_brier": brier(base_rate[complete], outcome)},
              "models": {}, "baselines": {}}
    for group in ("models", "baselines"):
        for name in (getattr(folds[0], group) if folds else {}):
            forecast = _concatenate([getattr(f, group)[name] for f in folds])
            probability = forecast.probability_below[complete]
            report[group][name] = {"horizons": horizon_metrics(forecast, actual, last),
                                   "final": final_metrics(forecast, actual_final, complete,
                                                          cohort.semesters - 1 - last),
                                   "brier": brier(probability, outcome),
                                   "reliability": reliability(probability, outcome)}
    return rounded(report)


def rounded(value):
    """Floats to DIGITS decimals, and NaN (an empty group) to None: JSON has no NaN."""
    if isinstance(value, dict):
        return {key: rounded(v) for key, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, DIGITS) if np.isfinite(value) else None
    return value


def _forecasters(section: dict) -> list[tuple[str, dict]]:
    """(label, entry) of every model, then every baseline, as the tables name them."""
    return ([(f"`{name}`", entry) for name, entry in section["models"].items()]
            + [(f"{name} rolled forward" + (" (the baseline)" if name == RISK_BASELINE else ""), entry)
               for name, entry in section["baselines"].items()])


def _interval_cell(m: dict | None) -> str:
    return "" if not m else f"{m['mae']:.3f} / {m[COVERAGE_KEY]:.3f} / {m[WIDTH_KEY]:.2f}"


def format_trajectory(section: dict | None) -> list[str]:
    """evaluation.md's tables of the rest of the degree (none for a report without them: older runs)."""
    if not section or not (section["models"] or section["baselines"]):
        return []
    forecasters = _forecasters(section)
    first = forecasters[0][1]
    horizons = sorted(first["horizons"], key=int)
    remaining = sorted(first["final"]["by_remaining"], key=int)
    risk = section["risk"]
    lines = ["## The rest of the degree: every remaining semester, the final CGPA, the risk", "",
             f"Forecast from each of the {section['cuts']} cuts of the held-out students (a student's grades up "
             "to an observed semester, later ones hidden; a student whose last semester is known is no cut). "
             "Horizon h is the h-th semester after the cut's last known one. The models follow their median "
             "path (model/trajectory.py); each baseline is rolled forward, its own median fed back as the next "
             "semester's grade, its 80% interval and its risk taken from its own residuals on the training "
             "students' cuts of the fold.", "",
             f"### Per horizon: MAE / {COVERAGE_KEY} / {WIDTH_KEY}", "",
             "| model | " + " | ".join(f"h={h} (n={first['horizons'][h]['n']})" for h in horizons) + " |",
             "|---" * (1 + len(horizons)) + "|"]
    for label, entry in forecasters:
        lines.append(f"| {label} | " + " | ".join(_interval_cell(entry["horizons"].get(h)) for h in horizons) + " |")
    if risk["n"]:
        by_remaining = first["final"]["by_remaining"]
        lines += ["", f"### The final CGPA: MAE / {COVERAGE_KEY} / {WIDTH_KEY}", "",
                  "Cuts of students with every semester observed (their final CGPA is known), overall and by the "
                  "semesters that remained after the cut.", "",
                  f"| model | all (n={risk['n']}) | " + " | ".join(
                      f"{r} remaining (n={by_remaining[r]['n']})" for r in remaining) + " |",
                  "|---" * (2 + len(remaining)) + "|"]
        for label, entry in forecasters:
            final = entry["final"]
            lines.append(f"| {label} | {_interval_cell(final)} | "
                         + " | ".join(_interval_cell(final["by_remaining"].get(r)) for r in remaining) + " |")
    return lines + [""] + _format_risk(section, forecasters)


def _format_risk(section: dict, forecasters: list[tuple[str, dict]]) -> list[str]:
    risk = section["risk"]
    if not risk["n"]:
        return []
    lines = [f"### The risk of a final CGPA below {section['line']:g} (the at-risk line)", "",
             f"{risk['n']} cuts of complete students, {risk['observed_below']:.1%} of them ended below. Brier "
             "score: the mean squared gap between the probability and the outcome (0 or 1); lower is better, "
             "0 is a perfect forecaster.", "",
             "| forecaster | Brier score |", "|---|---|"]
    lines += [f"| {label} | {entry['brier']:.4f} |" for label, entry in forecasters]
    if risk["base_rate_brier"] is not None:
        lines.append(f"| always the training base rate ({risk['base_rate']:.3f}) | {risk['base_rate_brier']:.4f} |")
    lines += ["", "### Reliability of that probability: n / mean predicted / observed share", "",
              "| predicted | " + " | ".join(label for label, _ in forecasters) + " |",
              "|---" * (1 + len(forecasters)) + "|"]
    for b, row in enumerate(forecasters[0][1]["reliability"]):
        cells = []
        for _, entry in forecasters:
            cell = entry["reliability"][b]
            cells.append(f"{cell['n']} / {cell['mean_predicted']:.3f} / {cell['observed']:.3f}" if cell["n"] else "0")
        lines.append(f"| {row['bin']} | " + " | ".join(cells) + " |")
    return lines + [""]
