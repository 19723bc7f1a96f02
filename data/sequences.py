"""Training examples and student-level splits.

An example is (student, target semester): predict grades[student, target] from the
semesters before it. Splits are over students, never over examples, so no student's
later semesters can leak into a test fold through their earlier ones.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from cgpa_rnn.data.cohort import DataError


def predictable(observed):
    """[N, S] observed flags -> [N, S-1]: is semester t+1 a target to learn or score? It is when it
    is observed and some earlier semester is. The one statement of the rule: `next_examples`
    uses it on numpy arrays, the network's loss on torch tensors (both have cumsum(1) and &)."""
    seen = observed.cumsum(1) > 0
    return observed[:, 1:] & seen[:, :-1]


def next_examples(grades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (student, t) with semester t observed and at least one earlier semester observed."""
    student, target = np.nonzero(predictable(~np.isnan(grades)))
    return student, target + 1


def last_examples(grades: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The horizon's last semester from all earlier ones (on the real data: 5th from 1st-4th)."""
    student, target = next_examples(grades)
    keep = target == grades.shape[1] - 1
    return student[keep], target[keep]


TARGETS = {"next": next_examples, "last": last_examples}


@dataclass(frozen=True)
class Normalisation:
    """Grade mean and spread over the observed cells of the training students only."""

    mean: float
    std: float

    @classmethod
    def fit(cls, grades: np.ndarray) -> Normalisation:
        values = grades[~np.isnan(grades)]
        return cls(float(values.mean()), float(max(values.std(), 1e-3)))


def split_students(n: int, seed: int, validation: float = 0.15, test: float = 0.15
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded train / validation / test partition of student indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test)), int(round(n * validation))
    if n - n_test - n_val < 1 or (validation > 0 and n_val < 1):
        raise DataError(f"{n} students are too few for a {validation:.0%} / {test:.0%} split")
    return np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val]), np.sort(order[:n_test])


@dataclass(frozen=True)
class Fold:
    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


def repeated_kfold(n: int, folds: int, repeats: int, seed: int) -> Iterator[Fold]:
    """K-fold over students, repeated with a fresh shuffle each time."""
    if not 2 <= folds <= n:
        raise DataError(f"cannot make {folds} folds of {n} students")
    rng = np.random.default_rng(seed)
    for repeat in range(repeats):
        parts = np.array_split(rng.permutation(n), folds)
        for fold, test in enumerate(parts):
            train = np.concatenate([p for k, p in enumerate(parts) if k != fold])
            yield Fold(repeat, fold, np.sort(train), np.sort(test))
