"""Error metrics of a set of predictions, overall, per group and per semester, and the paired
bootstrap that says how sure a difference between two models is."""
from __future__ import annotations

import numpy as np

from cgpa_rnn.model.config import COVERAGE_KEY, WIDTH_KEY
from cgpa_rnn.rules import inside_interval

BOOTSTRAP_DRAWS = 4000


def regression_metrics(prediction: np.ndarray, actual: np.ndarray, low: np.ndarray | None = None,
                       high: np.ndarray | None = None) -> dict:
    error = prediction - actual
    total = ((actual - actual.mean()) ** 2).sum() if len(actual) else 0.0
    metrics = {
        "n": int(len(actual)),
        "mae": float(np.abs(error).mean()) if len(actual) else float("nan"),
        "rmse": float(np.sqrt((error ** 2).mean())) if len(actual) else float("nan"),
        "r2": float(1 - (error ** 2).sum() / total) if total > 0 else float("nan"),
        # MAE in standard deviations of the target: comparable across cohorts graded on different scales.
        "mae_per_sd": float(np.abs(error).mean() / actual.std()) if total > 0 else float("nan"),
    }
    if low is not None:
        metrics.update(interval_metrics(actual, low, high))
    return metrics


def interval_metrics(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict:
    """Share of actual grades inside the interval and its mean width."""
    if not len(actual):
        return {COVERAGE_KEY: float("nan"), WIDTH_KEY: float("nan")}
    return {COVERAGE_KEY: float(inside_interval(low, actual, high).mean()), WIDTH_KEY: float((high - low).mean())}


def by_semester(prediction, actual, target, low=None, high=None) -> dict:
    """Per predicted semester (1-based number, as text): n, MAE and, with an interval, its coverage and width."""
    return by_value(prediction, actual, target + 1, low, high)


def by_value(prediction, actual, values, low=None, high=None) -> dict:
    """Per integer value of `values` (a semester number, a horizon; as text): n, MAE and, with an interval,
    its coverage and width."""
    result = {}
    for value in np.unique(values):
        pick = values == value
        entry = {"n": int(pick.sum()), "mae": float(np.abs(prediction[pick] - actual[pick]).mean())}
        if low is not None:
            entry.update(interval_metrics(actual[pick], low[pick], high[pick]))
        result[str(int(value))] = entry
    return result


def best_baseline(report: dict, target: str) -> tuple[str, float]:
    """The baseline with the lowest MAE on `target` in a report's "baselines" (an evaluation, or a
    held-out entry of metrics.json without the "model" key), and that MAE."""
    name = best_baseline_name({b: scores[target] for b, scores in report["baselines"].items()})
    return name, report["baselines"][name][target]["mae"]


def best_baseline_name(baselines: dict) -> str:
    """Of baselines' metrics by name ({name: {"mae": ...}}), the name with the lowest MAE."""
    return min(baselines, key=lambda name: baselines[name]["mae"])


def mae_by_group(prediction: np.ndarray, actual: np.ndarray, groups: np.ndarray) -> dict:
    return {str(g): {"n": int((groups == g).sum()),
                     "mae": float(np.abs(prediction - actual)[groups == g].mean())}
            for g in np.unique(groups)}


def paired_bootstrap(error_model: np.ndarray, error_other: np.ndarray, student: np.ndarray,
                     draws: int = BOOTSTRAP_DRAWS, seed: int = 0) -> dict:
    """The difference in MAE (model minus other) on the same examples, resampling students.

    Students, not examples, are drawn with replacement: a student's examples (every semester,
    every repeat of the cross-validation) are correlated and move together. Returns the
    difference, its 95% percentile interval and the share of draws in which the model's MAE
    is lower."""
    students, index = np.unique(student, return_inverse=True)
    difference = np.bincount(index, weights=error_model - error_other, minlength=len(students))
    count = np.bincount(index, minlength=len(students)).astype(np.float64)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(students), np.full(len(students), 1.0 / len(students)), size=draws)
    drawn = (weights @ difference) / (weights @ count)
    low, high = np.percentile(drawn, (2.5, 97.5))
    return {"mae_difference": float(difference.sum() / count.sum()), "ci95": [float(low), float(high)],
            "model_wins": float((drawn < 0).mean()), "draws": draws, "students": int(len(students))}


def against_best(mae: float, best: float) -> str:
    """How a model's MAE compares with the best baseline's, in the reports' words ("level with" when
    equal at the four decimals they print: a model that fell back to persistence)."""
    if f"{mae:.4f}" == f"{best:.4f}":
        return "level with"
    return f"{abs(mae - best) / best:.1%} {'below' if mae < best else 'above'}"
