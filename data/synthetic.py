"""A seeded synthetic cohort in the real file's schema, with a known generating process.

Each student's semester grades are one draw from a multivariate normal whose mean
(per semester, per college) and covariance (per-semester spread; a correlation that is
strong between neighbouring semesters and stays high across the whole degree) are
calibrated to the shipped data/student-semester-result.csv. Because the process is
known, the best any predictor can do is known too: the Gaussian conditional mean of
the target given the observed semesters, whose expected absolute error is
sqrt(2/pi) times the conditional standard deviation (`best_achievable_mae`).

The generator writes the same messy strings a real export has (roll in one of two
columns, four gender spellings, blank cells), and the cohort is parsed by the same
`cohort_from_table` a CSV goes through.

A second kind, `sticky`, is another school system's cohort: three grading periods on a
0-20 scale of integer grades that mostly stay where they were (a student's next grade
repeats the last one more often than not, otherwise moves a point or two towards their
own level), a few zeros where a student did not sit the exam, two schools with text codes
("GP", "MS"). On such a cohort repeating the last grade is a strong forecaster, the case
the network's prior must contain.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgpa_rnn.data.cohort import Cohort, CohortFormat, cohort_from_table
from cgpa_rnn.encoding import DEFAULT_SCALE, Scale
from cgpa_rnn.errors import UserError
from cgpa_rnn.table import table_from_rows
from cgpa_rnn.values import semester_name

KINDS = ("calibrated", "sticky")
STICKY_SCALE = Scale(0, 20)
STICKY_SCHOOLS = (("GP", 0.75, 0.5), ("MS", 0.25, -0.8))  # code, share, offset of the school's level
STICKY_REPEAT = 0.45  # chance that a period's grade repeats the last one exactly
STICKY_ABSENT = 0.03  # chance per later period that a student did not sit the exam (a 0)

# Measured on the real file (pandas describe/corr per semester, groupby college).
REAL_MEANS = (7.039, 6.943, 6.622, 7.028, 7.433)
REAL_SPREADS = (0.860, 0.881, 0.919, 1.036, 1.069)
# College mean minus overall mean, per semester; colleges' share of students.
COLLEGE_OFFSETS = {
    115: (0.36, -0.01, 0.08, 0.21, 0.10),
    116: (-0.06, -0.07, -0.22, -0.03, 0.05),
    165: (-0.32, 0.04, 0.06, -0.06, 0.08),
    241: (0.00, 0.09, 0.15, -0.18, -0.29),
}
COLLEGE_SHARES = (46, 51, 46, 35)
# corr(t, t+k) = STABLE + (1 - STABLE) * DECAY**k fits the real lags 1-4 (0.81, 0.76, 0.74, 0.70).
STABLE, DECAY = 0.70, 0.35
GENDER_SPELLINGS = (("Male", 80), ("M", 69), ("Female", 17), ("F", 11), ("", 1))


@dataclass(frozen=True)
class SyntheticSpec:
    students: int = 2000
    seed: int = 0
    semesters: int = 5
    dropout_rate: float = 0.03  # share of students whose last semesters are blank
    gap_rate: float = 0.02  # share of students with one blank semester in the middle
    kind: str = "calibrated"  # or "sticky": see the module's docstring

    def __post_init__(self):
        if self.kind not in KINDS:
            raise UserError(f"unknown synthetic cohort {self.kind!r}; valid: {', '.join(KINDS)}")
        if not 2 <= self.semesters <= 40:
            raise UserError(f"--synthetic-semesters {self.semesters}: expected between 2 and 40 semesters")

    @property
    def scale(self) -> Scale:
        return STICKY_SCALE if self.kind == "sticky" else DEFAULT_SCALE

    def reading(self) -> CohortFormat:
        """How its table is read: the sticky kind names its periods G1.. and its schools in `school`."""
        if self.kind == "sticky":
            return CohortFormat(tuple(f"G{t + 1}" for t in range(self.semesters)), STICKY_SCALE, "school")
        return CohortFormat()

    def _extend(self, values) -> np.ndarray:
        # Horizons longer than the real five semesters repeat the last semester's statistics.
        values = np.asarray(values, dtype=np.float64)
        return np.concatenate([values, np.repeat(values[-1:], max(0, self.semesters - len(values)))])[: self.semesters]

    def mean(self, college: int) -> np.ndarray:
        return self._extend(REAL_MEANS) + self._extend(COLLEGE_OFFSETS[college])

    def covariance(self) -> np.ndarray:
        lag = np.abs(np.subtract.outer(np.arange(self.semesters), np.arange(self.semesters)))
        correlation = STABLE + (1 - STABLE) * DECAY ** lag
        spread = self._extend(REAL_SPREADS)
        return correlation * np.outer(spread, spread)


def generate_frame(spec: SyntheticSpec):
    """Raw strings in the real CSV's schema (or the sticky kind's), as a pandas DataFrame (pandas:
    the training extra)."""
    import pandas as pd

    return pd.DataFrame(generate_columns(spec))


def generate_columns(spec: SyntheticSpec) -> dict[str, np.ndarray]:
    """The file's columns by name, each an array of its raw cell strings."""
    if spec.kind == "sticky":
        return _sticky_columns(spec)
    rng = np.random.default_rng(spec.seed)
    codes = np.array(list(COLLEGE_OFFSETS))
    shares = np.array(COLLEGE_SHARES) / sum(COLLEGE_SHARES)
    drawn = rng.choice(len(codes), size=spec.students, p=shares)  # the same draws as choosing from the codes
    college = codes[drawn]
    chol = np.linalg.cholesky(spec.covariance())
    means = np.stack([spec.mean(c) for c in codes])[drawn]
    grades = np.clip(means + rng.standard_normal((spec.students, spec.semesters)) @ chol.T, spec.scale.low,
                     spec.scale.high)
    grades = np.round(grades, 2)
    if spec.semesters >= 3:
        dropped = rng.random(spec.students) < spec.dropout_rate
        for i in np.flatnonzero(dropped):
            grades[i, rng.integers(2, spec.semesters):] = np.nan
        gapped = rng.random(spec.students) < spec.gap_rate
        for i in np.flatnonzero(gapped):
            grades[i, rng.integers(1, spec.semesters - 1)] = np.nan
    spellings, weights = zip(*GENDER_SPELLINGS)
    gender = rng.choice(spellings, size=spec.students, p=np.array(weights) / sum(weights))

    columns = {semester_name(t + 1): _cells(grades[:, t], lambda g: "" if np.isnan(g) else f"{g:.2f}")
               for t in range(spec.semesters)}
    columns["College Code"] = _cells(college)
    columns["Gender"] = _cells(gender)
    roll = np.zeros(spec.students, dtype=np.int64)
    for code in codes:
        members = college == code
        roll[members] = 17017 + np.arange(members.sum())
    # Like the real export, one college files its roll numbers under a different column.
    in_roll_no = college == codes[0]
    rolls = (roll.astype(str) + ".0").astype(object)
    columns["Roll"] = np.where(in_roll_no, "", rolls)
    columns["Roll no."] = np.where(in_roll_no, rolls, "")
    columns["Subject Code"] = _cells(np.where(college == 241, "28", "16"))
    return columns


def _cells(values: np.ndarray, text=str) -> np.ndarray:
    """Each value's cell text, as an object array in which equal values share one string: a million students'
    eight grades are then about a thousand strings rather than eight million (the same text, a fraction of the
    memory and of the time)."""
    distinct, index = np.unique(values, return_inverse=True)
    return np.array([text(value) for value in distinct], dtype=object)[index.reshape(-1)]


def _sticky_columns(spec: SyntheticSpec) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(spec.seed)
    codes, shares, offsets = zip(*STICKY_SCHOOLS)
    school = rng.choice(len(codes), size=spec.students, p=np.array(shares))
    level = 11.0 + np.array(offsets)[school] + 3.0 * rng.standard_normal(spec.students)
    grades = np.empty((spec.students, spec.semesters))
    grades[:, 0] = np.round(level + 1.5 * rng.standard_normal(spec.students))
    for t in range(1, spec.semesters):
        previous = grades[:, t - 1]
        moved = np.round(0.7 * previous + 0.3 * level + 0.3 + 1.1 * rng.standard_normal(spec.students))
        grades[:, t] = np.where(rng.random(spec.students) < STICKY_REPEAT, previous, moved)
        grades[:, t] = np.where(rng.random(spec.students) < STICKY_ABSENT, 0.0, grades[:, t])
    grades = np.clip(grades, STICKY_SCALE.low, STICKY_SCALE.high).astype(int)
    columns = {"school": _cells(np.array(codes)[school]),
               "sex": _cells(rng.choice(["F", "M"], size=spec.students)),
               "absences": _cells(rng.poisson(4, size=spec.students))}
    for t in range(spec.semesters):
        columns[f"G{t + 1}"] = _cells(grades[:, t])
    return columns


def synthetic_cohort(students: int = SyntheticSpec.students, seed: int = SyntheticSpec.seed,
                     semesters: int | None = None, kind: str = SyntheticSpec.kind) -> Cohort:
    """The seeded synthetic cohort of this kind (semesters: 5 for `calibrated`, 3 for `sticky` by default)."""
    if semesters is None:
        semesters = 3 if kind == "sticky" else SyntheticSpec.semesters
    spec = SyntheticSpec(students=students, seed=seed, semesters=semesters, kind=kind)
    source = {"kind": "synthetic", "seed": seed, "students": students, "semesters": semesters}
    if kind != SyntheticSpec.kind:
        source["cohort"] = kind
    return cohort_from_table(_table(spec, f"synthetic cohort (seed {seed})"), source, spec.reading())


def _table(spec: SyntheticSpec, where: str):
    """The generated file as the CSV reader's table. Without pandas, whose frame would make every cell its own
    string again; the columns and rows it is built from are gone before the cohort is parsed from it."""
    columns = generate_columns(spec)
    return table_from_rows(list(columns), np.stack(list(columns.values()), axis=1).tolist(), where)


def spec_of(cohort: Cohort) -> SyntheticSpec:
    if not cohort.is_synthetic or cohort.source.get("cohort", SyntheticSpec.kind) != SyntheticSpec.kind:
        raise ValueError("the best achievable error is only known for the calibrated synthetic cohort")
    source = cohort.source
    return SyntheticSpec(students=source["students"], seed=source["seed"], semesters=source["semesters"])


def oracle(cohort: Cohort, student: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The best prediction of grades[student, target] from the observed earlier semesters.

    Returns the conditional mean and standard deviation (ignoring the 0-10 clip and the
    rounding to two decimals, which move grades by far less than the noise)."""
    spec = spec_of(cohort)
    cov = spec.covariance()
    means, sds = np.empty(len(student)), np.empty(len(student))
    for n, (i, t) in enumerate(zip(student, target)):
        mu = spec.mean(int(cohort.college[i]))
        seen = np.flatnonzero(~np.isnan(cohort.grades[i, :t]))
        weights = np.linalg.solve(cov[np.ix_(seen, seen)], cov[seen, t])
        means[n] = mu[t] + weights @ (cohort.grades[i, seen] - mu[seen])
        sds[n] = np.sqrt(cov[t, t] - weights @ cov[seen, t])
    return means, sds


def best_achievable_mae(cohort: Cohort, student: np.ndarray, target: np.ndarray) -> float:
    """Expected absolute error of the oracle over these examples: the floor for any model."""
    _, sds = oracle(cohort, student, target)
    return float(np.sqrt(2 / np.pi) * sds.mean())
