"""Semester-results data: the CSV reader, the synthetic cohort, examples and splits."""
from pathlib import Path

from data.cohort import Cohort, DataError, load_csv
from data.synthetic import synthetic_cohort

DEFAULT_SYNTHETIC_SEED = 0


def load_cohort(path: str | Path | None = None, semesters: list[str] | None = None,
                synthetic_students: int = 2000, seed: int = DEFAULT_SYNTHETIC_SEED) -> Cohort:
    """The CSV at path, or the synthetic cohort when no path is given."""
    if path is None:
        return synthetic_cohort(students=synthetic_students, seed=seed)
    return load_csv(path, semesters)


__all__ = ["Cohort", "DataError", "load_csv", "load_cohort", "synthetic_cohort"]
