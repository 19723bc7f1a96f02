"""The baselines a recurrent network has to beat, each with an 80% interval.

- persistence: the last observed semester;
- student mean: the mean of the student's semesters so far;
- ridge: one ridge regression per target semester on the earlier semesters (missing
  cells filled with the training mean, plus missing indicators) and a college one-hot,
  its penalty chosen by leave-one-out error on the training students only;
- damped deviation: the college x semester mean plus phi_t times the student's exponentially
  smoothed deviation from those means, plus a shift per college and target semester (alpha
  shared, one phi per target semester, all fitted by absolute error on the training
  students). Persistence is its incumbent: without clear evidence against repeating the last
  grade on the training students it is the persistence forecast exactly;
- gaussian: college x semester means, the covariance of the deviations from them, and the
  conditional mean of the target semester given the observed earlier ones.

Every baseline's interval is its point prediction plus the 10% and 90% quantiles of its
residuals on the training students, per target semester (the same level as the network's).
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod

import numpy as np

from cgpa_rnn.data.sequences import next_examples
from cgpa_rnn.model.config import QUANTILES
from cgpa_rnn.rules import last_observed

ALPHAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
SMOOTHING = np.round(np.arange(0.05, 1.0001, 0.05), 2)  # alphas tried by the damped deviation
# Standard errors by which the best fit must beat persistence to replace it. Two, not one: the best of
# 21 fits is compared, so its in-sample gain is biased upward (measured over 15 cross-validation folds:
# UCI maths and Portuguese at most 1.15, the shipped data at least 8.2, 60 synthetic students 4.2).
EVIDENCE = 2.0
# Examples a baseline predicts at once: each is a copy of its student's semesters and the college's means, so
# all seven million of a million students' at once took 1.5 GB; a bounded number keep it flat.
EXAMPLES_AT_ONCE = 500_000


def _history(grades: np.ndarray, student: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each example's earlier semesters, NaN at and after the target."""
    rows = grades[student].copy()
    rows[np.arange(rows.shape[1])[None, :] >= target[:, None]] = np.nan
    return rows


class Baseline(ABC):
    """fit() learns the point forecast (`_fit`), then its residual quantiles per target semester."""

    name = "baseline"

    def fit(self, grades: np.ndarray, college: np.ndarray):
        self._fit(grades, college)
        student, target = next_examples(grades)
        residual = grades[student, target] - self.predictions(grades, college, student, target)
        overall = np.quantile(residual, (QUANTILES[0], QUANTILES[-1])) if len(residual) else np.zeros(2)
        self.residual_quantiles = {int(t): np.quantile(residual[target == t], (QUANTILES[0], QUANTILES[-1]))
                                   if (target == t).sum() >= 5 else overall for t in range(1, grades.shape[1])}
        return self

    def _fit(self, grades: np.ndarray, college: np.ndarray) -> None:
        """Learn the point forecast's parameters; rules with none to learn (persistence) keep this."""
        return None

    @abstractmethod
    def predict(self, grades, college, student, target) -> np.ndarray:
        """The point forecast of each (student, target semester) example."""

    def predictions(self, grades, college, student, target) -> np.ndarray:
        """predict() of any number of examples, EXAMPLES_AT_ONCE at a time."""
        return np.concatenate([self.predict(grades, college, student[start:start + EXAMPLES_AT_ONCE],
                                            target[start:start + EXAMPLES_AT_ONCE])
                               for start in range(0, max(len(student), 1), EXAMPLES_AT_ONCE)])

    def predict_interval(self, grades, college, student, target) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction, low, high of each (student, target) example."""
        prediction = self.predictions(grades, college, student, target)
        semesters = range(1, len(self.residual_quantiles) + 1)
        offsets = np.stack([np.zeros(2)] + [self.residual_quantiles[t] for t in semesters])[target]  # row 0: no target
        return prediction, prediction + offsets[:, 0], prediction + offsets[:, 1]


class Persistence(Baseline):
    name = "persistence"

    def predict(self, grades, college, student, target):
        rows = _history(grades, student, target)
        return rows[np.arange(len(rows)), last_observed(~np.isnan(rows))]


class StudentMean(Baseline):
    name = "student_mean"

    def predict(self, grades, college, student, target):
        return np.nanmean(_history(grades, student, target), axis=1)


class Ridge(Baseline):
    name = "ridge"

    def _fit(self, grades: np.ndarray, college: np.ndarray) -> None:
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
    del x  # a million students' standardised features: 150 MB that the loop below need not keep
    squares, best = u ** 2, None
    for alpha in ALPHAS:
        shrink = s ** 2 / (s ** 2 + alpha)
        fitted = u @ (shrink * (u.T @ yc))
        leverage = squares @ shrink + 1.0 / len(y)
        loo = np.mean(((yc - fitted) / np.maximum(1 - leverage, 1e-6)) ** 2)
        if best is None or loo < best[0]:
            best = (loo, alpha)
    alpha = best[1]
    weights = vt.T @ ((s / (s ** 2 + alpha)) * (u.T @ yc))
    return mean, scale, weights, intercept


class CollegeMeans:
    """Mean grade per college and semester on the training students. A college not seen in
    training, or a (college, semester) nobody had, takes the semester's mean over all colleges;
    a semester nobody had, the overall mean."""

    def __init__(self, grades: np.ndarray, college: np.ndarray):
        observed = ~np.isnan(grades)
        overall = float(grades[observed].mean()) if observed.any() else 0.0
        counts = observed.sum(0)
        self.semester = np.where(counts > 0, np.nansum(grades, 0) / np.maximum(counts, 1), overall)
        self.table = {}
        for code in np.unique(college):
            rows = grades[college == code]
            n = (~np.isnan(rows)).sum(0)
            self.table[int(code)] = np.where(n > 0, np.nansum(rows, 0) / np.maximum(n, 1), self.semester)

    def flattened(self) -> CollegeMeans:
        """The same colleges with each one's mean over all semesters in every semester: with these,
        alpha = phi = 1 and no shift, the damped deviation's forecast is the last grade itself."""
        flat = copy.copy(self)
        flat.semester = np.full_like(self.semester, self.semester.mean())
        flat.table = {code: np.full_like(row, row.mean()) for code, row in self.table.items()}
        return flat

    def of(self, college: np.ndarray) -> np.ndarray:
        """[N, S] the expected grade of each student's college in each semester."""
        return self.rows()[lookup(np.array(sorted(self.table), dtype=np.int64), college)]

    def rows(self) -> np.ndarray:
        """[V + 1, S] each college's means in the order of its code, then the semester's (a college not seen)."""
        return np.stack([self.table[code] for code in sorted(self.table)] + [self.semester])


def lookup(codes: np.ndarray, college: np.ndarray) -> np.ndarray:
    """[N] each code's position in the sorted `codes`, len(codes) for a code not among them: a table's row
    per student without a loop over students (a million of them are a state's cohort)."""
    position = np.searchsorted(codes, college).clip(max=max(len(codes) - 1, 0))
    known = codes[position] == college if len(codes) else np.zeros(len(college), dtype=bool)
    return np.where(known, position, len(codes))


def smoothed_deviation(deviation: np.ndarray, alpha: float) -> np.ndarray:
    """[N, S] -> [N, S]: after semester t, the exponentially smoothed deviation of semesters 1..t,
    started at the first observed one; a missing semester leaves the level as it is (the same
    rule as the network's model.network.smoothed_level)."""
    level = np.zeros(deviation.shape[0])
    seen = np.zeros(deviation.shape[0], dtype=bool)
    levels = np.empty_like(deviation, dtype=np.float64)
    for t in range(deviation.shape[1]):
        observed = ~np.isnan(deviation[:, t])
        value = np.nan_to_num(deviation[:, t])
        level = np.where(observed, np.where(seen, level + alpha * (value - level), value), level)
        seen |= observed
        levels[:, t] = level
    return levels


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def _fit_phi_and_shift(residual: np.ndarray, level: np.ndarray, colleges: dict[int, np.ndarray],
                       phi: float | None = None) -> tuple[float, dict[int, float], float, np.ndarray]:
    """phi (unless given) and a shift per college minimising sum |residual - shift[college] - phi level|;
    also the pooled shift (for a college not seen) and each example's absolute error. `colleges`: each
    college's examples (their positions). Alternating exact steps: for fixed shifts the best phi is a
    weighted median of (r - shift) / L (sum |L| |(r - shift)/L - phi|), for a fixed phi each shift a
    median; a few rounds settle, on integer-grade cohorts too."""
    free, phi, moving = phi is None, phi or 0.0, level != 0
    shift = np.zeros(len(residual))
    for _ in range(4 if free else 1):
        if free and moving.any():
            phi = _weighted_median((residual[moving] - shift[moving]) / level[moving], np.abs(level[moving]))
        remainder = residual - phi * level
        shifts = {code: float(np.median(remainder[rows])) for code, rows in colleges.items()}
        for code, rows in colleges.items():
            shift[rows] = shifts[code]
    pooled = float(np.median(residual - phi * level))
    return phi, shifts, pooled, np.abs(residual - shift - phi * level)


class DampedDeviation(Baseline):
    name = "damped_deviation"

    def _fit(self, grades: np.ndarray, college: np.ndarray) -> None:
        self.means = CollegeMeans(grades, college)
        deviation = grades - self.means.of(college)
        student, target = next_examples(grades)
        residual = deviation[student, target]
        # Per target semester: its examples, their students, and their positions per college; the same in
        # each of the 21 fits below, so found once rather than in each (a third of the time they took).
        by_target = []
        for t in np.unique(target):
            pick = np.flatnonzero(target == t)
            codes, index = np.unique(college[student[pick]], return_inverse=True)
            by_target.append((int(t), pick, student[pick], {int(c): np.flatnonzero(index == k)
                                                            for k, c in enumerate(codes)}))

        def fitted(alpha: float, phi: float | None = None):
            """(the examples' absolute errors, alpha, phi_t, shifts_t) with alpha fixed and phi fitted or fixed."""
            levels = smoothed_deviation(deviation, alpha)
            errors, phis, shifts = np.zeros(len(residual)), {}, {}
            for t, pick, students, colleges in by_target:
                phis[t], by_college, pooled, errors[pick] = _fit_phi_and_shift(
                    residual[pick], levels[students, t - 1], colleges, phi)
                shifts[t] = (by_college, pooled)
            return errors, alpha, phis, shifts

        # Persistence (the last grade itself) is the incumbent; the best fit, damped or persistence
        # plus each college's median drift, replaces it only when its error is lower by more than
        # EVIDENCE standard errors of the paired difference. On sticky integer grades the error is
        # flat around persistence, and an in-sample gain smaller than its noise becomes a loss on
        # new students (UCI Portuguese: persistence plus drift 0.9069 against persistence's 0.8929
        # in cross-validation; in-sample it was better by 0.13 standard errors).
        # A generator: one fit's errors alive at a time besides the best's (50 MB each on a million students).
        best = min((fitted(alpha, phi) for alpha, phi in [(1.0, 1.0)] + [(a, None) for a in SMOOTHING]),
                   key=lambda fit: fit[0].sum())
        gain = np.abs(grades[student, target] - Persistence().predictions(grades, college, student, target)) - best[0]
        spread = gain.std(ddof=1) / np.sqrt(len(gain)) if len(gain) > 1 else 0.0
        # Standard errors better than persistence; a gain without spread is as clear as evidence gets
        # (a large number rather than infinity, which JSON cannot write).
        self.evidence = float(gain.mean() / spread) if spread > 0 else (1e9 if gain.mean() > 0 else 0.0)
        self.persistence = self.evidence <= EVIDENCE
        if self.persistence:
            self.means = self.means.flattened()
            self.alpha, self.phi, self.shifts = 1.0, {t: 1.0 for t in range(1, grades.shape[1])}, {}
        else:
            _, self.alpha, self.phi, self.shifts = best

    def shift(self, college: int, t: int) -> float:
        """The fitted shift of target semester t at this college (the pooled one for a college not seen)."""
        by_college, pooled = self.shifts.get(int(t), ({}, 0.0))
        return by_college.get(int(college), pooled)

    def predict(self, grades, college, student, target):
        expected = self.means.of(college[student])
        history = _history(grades, student, target)
        level = smoothed_deviation(history - expected, self.alpha)[np.arange(len(student)), target - 1]
        semesters = range(grades.shape[1])
        phi = np.array([self.phi.get(t, 0.0) for t in semesters])[target]
        codes = np.array(sorted({c for by_college, _ in self.shifts.values() for c in by_college}), dtype=np.int64)
        pooled = [self.shifts.get(t, ({}, 0.0))[1] for t in semesters]
        shifts = np.array([[self.shift(c, t) for t in semesters] for c in codes.tolist()] + [pooled])
        shift = shifts[lookup(codes, college[student]), target]
        return expected[np.arange(len(student)), target] + shift + phi * level


class Gaussian(Baseline):
    name = "gaussian"

    def _fit(self, grades: np.ndarray, college: np.ndarray) -> None:
        self.means = CollegeMeans(grades, college)
        deviation = grades - self.means.of(college)
        observed = ~np.isnan(deviation)
        filled = np.nan_to_num(deviation)
        pairs = observed.T.astype(float) @ observed.astype(float)
        covariance = (filled.T @ filled) / np.maximum(pairs, 1)  # pairwise-complete, around the means
        values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
        # Pairwise estimates need not be positive definite; the floor keeps every solve stable.
        self.covariance = (vectors * np.maximum(values, 1e-3 * max(values.max(), 1e-6))) @ vectors.T

    def predict(self, grades, college, student, target):
        expected = self.means.of(college[student])
        deviation = _history(grades, student, target) - expected
        prediction = expected[np.arange(len(student)), target].astype(np.float64)
        observed = ~np.isnan(deviation)
        # Each (semesters observed, target) pattern as one integer: unique over integers, not over rows, which
        # took most of the time on a million students.
        bits = 1 << np.arange(observed.shape[1], dtype=np.int64)
        patterns = observed @ bits + target.astype(np.int64) * (1 << observed.shape[1])
        for pattern in np.unique(patterns):
            known, t = (pattern & bits) > 0, int(pattern >> observed.shape[1])
            rows = patterns == pattern
            if known.any():
                weights = np.linalg.solve(self.covariance[np.ix_(known, known)], self.covariance[known, t])
                prediction[rows] += deviation[rows][:, known] @ weights
        return prediction


BASELINES = (Persistence, StudentMean, Ridge, DampedDeviation, Gaussian)
