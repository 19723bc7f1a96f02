"""Inputs for checking and measuring a model: every prefix of real students, and random
students that cover what real ones rarely show (every history length, gaps, unseen
colleges, nothing left to predict). Used by verify, bench, quantization and the CLI."""
from __future__ import annotations

import numpy as np

from cgpa_rnn.data.cohort import Cohort
from cgpa_rnn.encoding import DEFAULT_SCALE, Scale

PARITY_SAMPLES = 10_000  # random students besides the training prefixes


def prefixes(grades: np.ndarray) -> np.ndarray:
    """Every student's semesters 1..t for t = 1..S, the rest NaN."""
    students, semesters = grades.shape
    rows = np.repeat(grades, semesters, axis=0)
    length = np.tile(np.arange(1, semesters + 1), students)
    rows[np.arange(semesters)[None, :] >= length[:, None]] = np.nan
    return rows


def random_students(count: int, semesters: int, colleges: list[int], seed: int = 0, scale: Scale = DEFAULT_SCALE):
    """Random histories on the scale, of every length 1..S, ~15% gaps, a fifth of them at unseen colleges."""
    rng = np.random.default_rng(seed)
    grades = np.round(rng.uniform(scale.low, scale.high, (count, semesters)), 2).astype(np.float32)
    length = rng.integers(1, semesters + 1, count)
    grades[np.arange(semesters)[None, :] >= length[:, None]] = np.nan
    grades[rng.random((count, semesters)) < 0.15] = np.nan
    known = rng.choice(np.array(colleges), count)
    unseen = rng.integers(0, 100_000, count)
    college = np.where(rng.random(count) < 0.2, unseen, known).astype(np.int64)
    return grades, college


def parity_inputs(cohort: Cohort | None, semesters: int, colleges: list[int], samples: int = PARITY_SAMPLES,
                  scale: Scale = DEFAULT_SCALE):
    """Every prefix of the training students (when at hand), then random students."""
    parts = [random_students(samples, semesters, colleges, scale=scale)]
    if cohort is not None:
        parts.insert(0, (prefixes(cohort.grades), np.repeat(cohort.college, cohort.semesters)))
    grades = np.concatenate([p[0] for p in parts]).astype(np.float32)
    college = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return grades, college
