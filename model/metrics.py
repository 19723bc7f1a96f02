"""Error metrics of a set of predictions, overall and per group."""
from __future__ import annotations

import numpy as np

from cgpa_rnn.model.config import COVERAGE_KEY, WIDTH_KEY


def regression_metrics(prediction: np.ndarray, actual: np.ndarray, low: np.ndarray | None = None,
                       high: np.ndarray | None = None) -> dict:
    error = prediction - actual
    total = ((actual - actual.mean()) ** 2).sum()
    metrics = {
        "n": int(len(actual)),
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error ** 2).mean())),
        "r2": float(1 - (error ** 2).sum() / total) if total > 0 else float("nan"),
    }
    if low is not None:
        metrics[COVERAGE_KEY] = float(((actual >= low) & (actual <= high)).mean())
        metrics[WIDTH_KEY] = float((high - low).mean())
    return metrics


def best_baseline(report: dict, target: str) -> tuple[str, float]:
    """The baseline with the lowest MAE on `target` in an evaluation report, and that MAE."""
    name = min(report["baselines"], key=lambda b: report["baselines"][b][target]["mae"])
    return name, report["baselines"][name][target]["mae"]


def mae_by_group(prediction: np.ndarray, actual: np.ndarray, groups: np.ndarray) -> dict:
    return {str(g): {"n": int((groups == g).sum()),
                     "mae": float(np.abs(prediction - actual)[groups == g].mean())}
            for g in np.unique(groups)}
