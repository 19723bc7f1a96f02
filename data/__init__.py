"""Semester-results data: the shipped real cohort, the CSV reader, the synthetic cohort, splits."""
from __future__ import annotations

from pathlib import Path

from cgpa_rnn.data.cohort import Cohort, CohortFormat, DataError, check_trainable, load_csv
from cgpa_rnn.data.sources import SHIPPED_DATA, describe_source
from cgpa_rnn.data.synthetic import SyntheticSpec, synthetic_cohort
from cgpa_rnn.rundir import file_sha256


def load_cohort(path: str | Path | None = None, form: CohortFormat = CohortFormat(),
                synthetic_students: int | None = None, seed: int = SyntheticSpec.seed,
                synthetic_kind: str = SyntheticSpec.kind, synthetic_semesters: int | None = None) -> Cohort:
    """The CSV at path; the synthetic cohort when asked for by size (and horizon); else the shipped real data."""
    if synthetic_students is not None:
        return synthetic_cohort(students=synthetic_students, seed=seed, semesters=synthetic_semesters,
                                kind=synthetic_kind)
    return load_csv(SHIPPED_DATA if path is None else path, form)


def recorded_cohort(source: dict, candidates: tuple[str | Path, ...] = ()) -> Cohort | None:
    """The cohort a run was trained on, found through its recorded source, or None.

    Synthetic cohorts are generated again, the shipped file is found in data/, and a
    user's own CSV is taken from `candidates` (e.g. a --data option) when its
    fingerprint matches; nothing is looked up in the current directory."""
    if source["kind"] == "synthetic":
        return synthetic_cohort(source["students"], source["seed"], source["semesters"],
                                source.get("cohort", SyntheticSpec.kind))
    paths = ([SHIPPED_DATA] if source.get("shipped") else []) + [Path(p) for p in candidates]
    for path in paths:
        if path.is_file() and file_sha256(path) == source["sha256"]:  # the same bytes parse the same
            return load_csv(path, CohortFormat.from_json(source.get("format")))
    return None


def missing_cohort_note(source: dict) -> str:
    return (f"the training data {describe_source(source)} is not at hand "
            "(pass it with --data to use it); going on without it")


__all__ = ["SHIPPED_DATA", "Cohort", "CohortFormat", "SyntheticSpec", "DataError", "check_trainable", "load_csv",
           "load_cohort", "recorded_cohort", "synthetic_cohort"]
