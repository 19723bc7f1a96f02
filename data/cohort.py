"""A cohort of students and their semester grades, read from the wide results CSV.

The CSV has one row per student and one column per semester. Real files are messy
(data/README.md describes the shipped one): the roll number sits in one of several
columns, roll numbers repeat across colleges, gender has several spellings, grades can
be blank anywhere. Every cohort, real or synthetic, goes through `cohort_from_table`,
and its CSV through cgpa_rnn.table, the same reader batch scoring uses.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cgpa_rnn.data.sources import csv_source, describe_source
from cgpa_rnn.errors import DataError
from cgpa_rnn.rules import last_observed
from cgpa_rnn.table import Limits, Table, read_table
from cgpa_rnn.values import (
    Header,
    college_code,
    grade_value,
    preview,
    preview_columns,
    read_header,
    require_college,
    semester_name,
)

GENDERS = ("female", "male", "unknown")
# Fewer leave a held-out share and per-member validation shares of a handful; every share needs
# students with a next semester to learn from, so the count is of students with two grades.
MIN_STUDENTS = 20
_GENDER_SPELLINGS = {"female": "female", "f": "female", "male": "male", "m": "male", "": "unknown"}


@dataclass(frozen=True)
class SkippedRow:
    line: int  # line number in the file (the header is line 1)
    student: str
    reason: str


@dataclass
class Cohort:
    """Students of one data source. grades[i, t] is student i's semester t+1, NaN if missing."""

    keys: list[str]  # "college/roll", unique
    college: np.ndarray  # int64 [N]
    gender: np.ndarray  # object [N], one of GENDERS
    grades: np.ndarray  # float32 [N, S]
    semester_names: list[str]
    source: dict  # data.sources.csv_source(...) or {"kind": "synthetic", "seed", ...}
    skipped: list[SkippedRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def semesters(self) -> int:
        return self.grades.shape[1]

    @property
    def is_synthetic(self) -> bool:
        return self.source["kind"] == "synthetic"

    def describe_source(self) -> str:
        return describe_source(self.source)

    def fingerprint(self) -> str:
        """SHA-256 of the file, or of the generated content for a synthetic cohort."""
        if "sha256" in self.source:
            return self.source["sha256"]
        digest = hashlib.sha256(np.ascontiguousarray(self.grades).tobytes())
        digest.update(np.ascontiguousarray(self.college).tobytes())
        return digest.hexdigest()

    def students_with_gaps(self) -> list[str]:
        """Students with a blank semester before their last observed one."""
        observed = ~np.isnan(self.grades)
        last = last_observed(observed)
        before_last = np.arange(self.semesters)[None, :] < last[:, None]
        return [k for k, gap in zip(self.keys, (before_last & ~observed).any(1)) if gap]


def load_csv(path: str | Path, semesters: list[str] | None = None, limits: Limits = Limits(),
             name: str | None = None) -> Cohort:
    """Read a results CSV; every problem is a DataError naming the file (as `name`, default its
    path), line and column."""
    table = read_table(path, limits, name)
    return cohort_from_table(table, csv_source(name or path, table.sha256), semesters)


def _clean_roll(value: str) -> str:
    # Rolls come as "17020.0" from spreadsheet exports; the student is 17020.
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def _student_key(table: Table, header: Header, line: int, record: dict) -> tuple[int, str]:
    try:
        college = college_code(record[header.college])
    except ValueError as error:
        raise DataError(f"{table.where}, line {line}, column '{header.college}': {error}") from None
    rolls = [_clean_roll(record[c]) for c in header.rolls if record[c]]
    if not rolls:
        raise DataError(f"{table.where}, line {line}: no roll number in {header.rolls}")
    return college, f"{college}/{rolls[0]}"


def _grades(table: Table, header: Header, line: int, record: dict) -> list[float]:
    grades = [float("nan")] * max(header.numbers)
    for column, number in zip(header.semesters, header.numbers):
        try:
            grades[number - 1] = grade_value(record[column])
        except ValueError as error:
            raise DataError(f"{table.where}, line {line}, column '{column}': {error}") from None
    return grades


def _gender(table: Table, header: Header, line: int, record: dict) -> str:
    spelling = record[header.gender].lower() if header.gender else ""
    if spelling not in _GENDER_SPELLINGS:
        raise DataError(f"{table.where}, line {line}, column '{header.gender}': unknown gender "
                        f"{preview(record[header.gender])}; expected Male, M, Female, F or blank")
    return _GENDER_SPELLINGS[spelling]


def cohort_from_table(table: Table, source: dict, semesters: list[str] | None = None) -> Cohort:
    """Parse a table (one row per student) into a Cohort; semester n lands in column n-1."""
    header = read_header(table.columns, table.where, semesters)
    require_college(header, table.columns, table.where)
    if not header.rolls:
        raise DataError(f"{table.where}: no roll-number column ('Roll' or 'Roll no.') in the header "
                        f"{preview_columns(table.columns)}")
    if len(table) == 0:
        raise DataError(f"{table.where}: the file has a header but no student rows")
    keys, colleges, genders, rows, skipped, seen = [], [], [], [], [], {}
    for line, record in table.records():
        college, key = _student_key(table, header, line, record)
        if key in seen:
            raise DataError(f"{table.where}, line {line}: student {key} (college/roll) appears twice, "
                            f"first on line {seen[key]}")
        seen[key] = line
        grades = _grades(table, header, line, record)
        if all(np.isnan(grades)):
            skipped.append(SkippedRow(line, key, "no grade in any semester"))
            continue
        genders.append(_gender(table, header, line, record))
        keys.append(key)
        colleges.append(college)
        rows.append(grades)
    if not rows:
        raise DataError(f"{table.where}: no student has any grade")
    names = dict(zip(header.numbers, header.semesters))
    semester_names = [names.get(n, semester_name(n)) for n in range(1, max(header.numbers) + 1)]
    return Cohort(keys, np.array(colleges, dtype=np.int64), np.array(genders, dtype=object),
                  np.array(rows, dtype=np.float32), semester_names, source, skipped)


def check_trainable(cohort: Cohort, min_students: int = MIN_STUDENTS) -> None:
    """A cohort a model can be trained and measured on, else one sentence saying why.

    The CLI's `cgpa train`/`evaluate` and the demo's training call this before any training,
    so a cohort either trains or gets this message (never a crash deep in training)."""
    if len(cohort) < min_students:
        raise DataError(f"{cohort.describe_source()}: {len(cohort)} students are too few to train and measure a "
                        f"model; at least {min_students} are needed")
    with_two = int(((~np.isnan(cohort.grades)).sum(axis=1) >= 2).sum())
    if with_two == 0:
        raise DataError(f"{cohort.describe_source()}: no student has a grade after an earlier one, so there is no "
                        f"next semester to learn from (at least {min_students} students with two grades are needed)")
    if with_two < min_students:
        raise DataError(f"{cohort.describe_source()}: too few students with two grades to train on (a model learns "
                        f"each semester from an earlier one): need at least {min_students}, found {with_two}")


def summary(cohort: Cohort) -> dict:
    """What `cgpa data` prints: counts, colleges, genders, per-semester statistics, source."""
    observed = ~np.isnan(cohort.grades)
    colleges, counts = np.unique(cohort.college, return_counts=True)
    per_semester = {}
    for t, name in enumerate(cohort.semester_names):
        column = cohort.grades[observed[:, t], t]
        per_semester[name] = {"observed": int(column.size), "mean": round(float(column.mean()), 3),
                              "std": round(float(column.std(ddof=1)), 3) if column.size > 1 else 0.0}
    return {
        "students": len(cohort),
        "semesters": cohort.semesters,
        "semester_columns": cohort.semester_names,
        "observed_cells": int(observed.sum()),
        "missing_cells": int((~observed).sum()),
        "students_with_gaps": len(cohort.students_with_gaps()),
        "colleges": {str(c): int(n) for c, n in zip(colleges, counts)},
        "genders": {g: int((cohort.gender == g).sum()) for g in GENDERS},
        "per_semester": per_semester,
        "skipped_rows": [{"line": s.line, "student": s.student, "reason": s.reason} for s in cohort.skipped],
        "synthetic": cohort.is_synthetic,
        "source": cohort.source,
    }


def format_summary(info: dict) -> str:
    lines = [f"source: {describe_source(info['source'])}"]
    if not info["synthetic"]:
        lines.append(f"sha256: {info['source']['sha256']}")
    lines += [f"students: {info['students']}   semesters: {info['semesters']} ({', '.join(info['semester_columns'])})",
              f"cells: {info['observed_cells']} observed, {info['missing_cells']} missing; "
              f"{info['students_with_gaps']} students with a gap before their last grade",
              "colleges: " + ", ".join(f"{c}: {n}" for c, n in info["colleges"].items()),
              "gender: " + ", ".join(f"{g}: {n}" for g, n in info["genders"].items()),
              "semester   observed   mean    std"]
    for name, stats in info["per_semester"].items():
        lines.append(f"{name:<10} {stats['observed']:>8} {stats['mean']:>6.2f} {stats['std']:>6.2f}")
    for row in info["skipped_rows"]:
        lines.append(f"left out: line {row['line']} (student {row['student']}): {row['reason']}")
    return "\n".join(lines)
