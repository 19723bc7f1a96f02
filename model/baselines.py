"""The baselines a recurrent network has to beat.

- persistence: the last observed semester;
- student mean: the mean of the student's semesters so far;
- ridge: one ridge regression per target semester on the earlier semesters (missing
  cells filled with the training mean, plus missing indicators) and a college one-hot,
  its penalty chosen by leave-one-out error on the training students only.
"""
from __future__ import annotations

import numpy as np

from cgpa_rnn.data.sequences import next_examples

ALPHAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def _history(grades: np.ndarray, student: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each example's earlier semesters, NaN at and after the target."""
    rows = grades[student].copy()
    rows[np.arange(rows.shape[1])[None, :] >= target[:, None]] = np.nan
    return rows


class Persistence:
    name = "persistence"

    def fit(self, grades, college):
        return self

    def predict(self, grades, college, student, target):
        rows = _history(grades, student, target)
        observed = ~np.isnan(rows)
        last = rows.shape[1] - 1 - np.argmax(observed[:, ::-1], axis=1)
        return rows[np.arange(len(rows)), last]


class StudentMean:
    name = "student_mean"

    def fit(self, grades, college):
        return self

    def predict(self, grades, college, student, target):
        return np.nanmean(_history(grades, student, target), axis=1)


class Ridge:
    name = "ridge"

    def fit(self, grades: np.ndarray, college: np.ndarray):
        self.colleges = np.unique(college)
        # A semester nobody in the training students has is filled with 0: its missing indicator
        # (always 1) carries all there is, and nanmean of an empty column would be NaN.
        observed = (~np.isnan(grades)).sum(0)
        self.fill = np.where(observed > 0, np.nansum(grades, axis=0) / np.maximum(observed, 1), 0.0)
        self.models = {}
        student, target = next_examples(grades)
        for t in np.unique(target):
            rows = student[target == t]
            features = self._features(grades[rows, :t], college[rows], t)
            self.models[t] = _fit_ridge(features, grades[rows, t].astype(np.float64))
        return self

    def _features(self, history: np.ndarray, college: np.ndarray, t: int) -> np.ndarray:
        missing = np.isnan(history)
        filled = np.where(missing, self.fill[:t], history)
        onehot = college[:, None] == self.colleges[None, :]  # an unseen college: all zeros
        return np.hstack([filled, missing, onehot]).astype(np.float64)

    def predict(self, grades, college, student, target):
        prediction = np.empty(len(student))
        for t in np.unique(target):
            pick = target == t
            features = self._features(grades[student[pick], :t], college[student[pick]], t)
            mean, scale, weights, intercept = self.models[t]
            prediction[pick] = ((features - mean) / scale) @ weights + intercept
        return prediction


def _fit_ridge(features: np.ndarray, y: np.ndarray):
    """Ridge on standardised features; the penalty with the lowest leave-one-out error wins."""
    mean, scale = features.mean(0), features.std(0)
    scale[scale == 0] = 1.0
    x = (features - mean) / scale
    intercept = y.mean()
    yc = y - intercept
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    best = None
    for alpha in ALPHAS:
        shrink = s ** 2 / (s ** 2 + alpha)
        fitted = u @ (shrink * (u.T @ yc))
        leverage = (u ** 2) @ shrink + 1.0 / len(y)
        loo = np.mean(((yc - fitted) / np.maximum(1 - leverage, 1e-6)) ** 2)
        if best is None or loo < best[0]:
            best = (loo, alpha)
    alpha = best[1]
    weights = vt.T @ ((s / (s ** 2 + alpha)) * (u.T @ yc))
    return mean, scale, weights, intercept


BASELINES = (Persistence, StudentMean, Ridge)
