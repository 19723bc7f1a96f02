"""A cohort of students and their semester grades, read from a results CSV.

The CSV has one row per student and one column per semester (or, with `--long`, one row
per student and term, widened first). Real files are messy (data/README.md describes the
shipped one): the roll number sits in one of several columns, roll numbers repeat across
colleges, gender has several spellings, grades can be blank anywhere. Another
institution's file has its own scale, group column and semester names: CohortFormat says
which, and nothing here assumes the shipped file's. Every cohort, real or synthetic, goes
through `cohort_from_table`, and its CSV through cgpa_rnn.table, the reader batch scoring uses.
"""
from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cgpa_rnn.data.sources import csv_source, describe_source
from cgpa_rnn.encoding import COLLEGE_CODES, DEFAULT_SCALE, Groups, Scale, groups_of
from cgpa_rnn.errors import DataError
from cgpa_rnn.rules import last_observed
from cgpa_rnn.table import Limits, LongLayout, Table, read_table, widen
from cgpa_rnn.values import (
    AUTO_GROUP,
    WHITESPACE,
    Header,
    grade_value,
    preview,
    read_header,
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


@dataclass(frozen=True)
class CohortFormat:
    """How to read a cohort file (`--semesters`, `--scale`, `--group`, `--long`)."""

    semesters: tuple[str, ...] | None = None  # the semester columns in order; None: found by their numbers
    scale: Scale = DEFAULT_SCALE
    group: str | None = AUTO_GROUP  # the group column; AUTO_GROUP: a college column if any; None: no group
    long: LongLayout | None = None  # one row per student and term

    @classmethod
    def parse(cls, semesters: str | None = None, scale: str | None = None, group: str | None = None,
              long: str | None = None) -> CohortFormat:
        """From the options as a person writes them (the CLI's, the demo's fields); blank means the default,
        group "none" means no group column."""
        semesters, scale, group, long = (str(v).strip(WHITESPACE) if v is not None else "" for v in
                                         (semesters, scale, group, long))
        return cls(tuple(s.strip(WHITESPACE) for s in semesters.split(",")) if semesters else None,
                   Scale.parse(scale) if scale else DEFAULT_SCALE,
                   AUTO_GROUP if not group else None if group.lower() == "none" else group,
                   LongLayout.parse(long) if long else None)

    def options(self) -> str:
        """The command-line options that read a file this way ("" for the defaults)."""
        given = [("--semesters", ",".join(self.semesters) if self.semesters else None),
                 ("--scale", None if self.scale == DEFAULT_SCALE else str(self.scale)),
                 ("--group", None if self.group == AUTO_GROUP else self.group or "none"),
                 ("--long", None if self.long is None else f"{self.long.student},{self.long.term},{self.long.grade}")]
        return " ".join(f"{flag} {shlex.quote(value)}" for flag, value in given if value)

    def to_json(self) -> dict:
        return {"semesters": None if self.semesters is None else list(self.semesters), "scale": str(self.scale),
                "group": self.group, "long": None if self.long is None else
                [self.long.student, self.long.term, self.long.grade]}

    @classmethod
    def from_json(cls, recorded: dict | None) -> CohortFormat:
        """A recorded format (None: the defaults, as runs made before formats were recorded read their file)."""
        recorded = recorded or {}
        long = recorded.get("long")
        return cls(tuple(recorded["semesters"]) if recorded.get("semesters") else None,
                   Scale.parse(recorded.get("scale", str(DEFAULT_SCALE))), recorded.get("group", AUTO_GROUP),
                   LongLayout(*long) if long else None)


@dataclass
class Cohort:
    """Students of one data source. grades[i, t] is student i's semester t+1, NaN if missing."""

    keys: list[str]  # "group/roll" (or "line N" in a file without IDs), unique
    college: np.ndarray  # int64 [N]: each student's group code (groups.codes)
    gender: np.ndarray  # object [N], one of GENDERS
    grades: np.ndarray  # float32 [N, S]
    semester_names: list[str]
    source: dict  # data.sources.csv_source(...) or {"kind": "synthetic", "seed", ...}
    skipped: list[SkippedRow] = field(default_factory=list)
    scale: Scale = DEFAULT_SCALE
    groups: Groups = COLLEGE_CODES

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


def load_csv(path: str | Path, form: CohortFormat = CohortFormat(), limits: Limits = Limits(),
             name: str | None = None) -> Cohort:
    """Read a results CSV; every problem is a DataError naming the file (as `name`, default its
    path), line and column."""
    table = read_table(path, limits, name)
    source = csv_source(name or path, table.sha256)
    if form != CohortFormat():
        source["format"] = form.to_json()  # so recorded_cohort reads the file the same way again
    return cohort_from_table(table, source, form)


def _student_key(table: Table, header: Header, line: int, record: dict) -> str:
    """The group and the roll number (Header.student); a file without any ID column names its
    students by line, and in a file with one every row needs an ID."""
    if header.rolls and not any(record[c] for c in header.rolls):
        raise DataError(f"{table.where}, line {line}: no student ID in {header.rolls}")
    return header.student(line, record)


def _grades(table: Table, header: Header, line: int, record: dict, scale: Scale) -> list[float]:
    grades = [float("nan")] * max(header.numbers)
    for column, number in zip(header.semesters, header.numbers):
        try:
            grades[number - 1] = grade_value(record[column], scale)
        except ValueError as error:
            raise DataError(f"{table.where}, line {line}, column '{column}': {error}; give the cohort's scale "
                            "(--scale, or the demo's grade scale)") from None
    return grades


def _group_codes(table: Table, header: Header, lines: list[int], cells: list[str]) -> tuple[Groups, list[int]]:
    for line, cell in zip(lines, cells):
        if header.college and not cell.strip(WHITESPACE):
            raise DataError(f"{table.where}, line {line}, column '{header.college}': blank; every student needs a "
                            f"{header.college}")
    try:
        return groups_of(header.college, cells)
    except ValueError as error:
        raise DataError(f"{table.where}, column '{header.college}': {error}") from None


def _gender(table: Table, header: Header, line: int, record: dict) -> str:
    spelling = record[header.gender].lower() if header.gender else ""
    if spelling not in _GENDER_SPELLINGS:
        raise DataError(f"{table.where}, line {line}, column '{header.gender}': unknown gender "
                        f"{preview(record[header.gender])}; expected Male, M, Female, F or blank")
    return _GENDER_SPELLINGS[spelling]


def cohort_from_table(table: Table, source: dict, form: CohortFormat = CohortFormat()) -> Cohort:
    """Parse a table into a Cohort; semester n lands in column n-1."""
    semesters = list(form.semesters) if form.semesters else None
    if form.long is not None:
        table, semesters = widen(table, form.long, semesters)
    header = read_header(table.columns, table.where, semesters, form.group)
    if form.long is not None:
        header = Header(header.semesters, header.numbers, header.college, [form.long.student], header.gender)
    if len(table) == 0:
        raise DataError(f"{table.where}: the file has a header but no student rows")
    keys, lines, group_cells, genders, skipped, seen = [], [], [], [], [], {}
    # Filled row by row: a million students' grades as Python lists took ten times the array's memory.
    values = np.empty((len(table), max(header.numbers)), dtype=np.float32)
    for line, record in table.records():
        key = _student_key(table, header, line, record)
        if key in seen:
            what = " (college/roll)" if header.college and header.rolls else ""
            raise DataError(f"{table.where}, line {line}: student {key}{what} appears twice, first on line "
                            f"{seen[key]}")
        seen[key] = line
        grades = _grades(table, header, line, record, form.scale)
        if all(np.isnan(grades)):
            skipped.append(SkippedRow(line, key, "no grade in any semester"))
            continue
        genders.append(_gender(table, header, line, record))
        keys.append(key)
        lines.append(line)
        group_cells.append(record[header.college] if header.college else "")
        values[len(keys) - 1] = grades
    if not keys:
        raise DataError(f"{table.where}: no student has any grade")
    groups, codes = _group_codes(table, header, lines, group_cells)
    names = dict(zip(header.numbers, header.semesters))
    semester_names = [names.get(n, semester_name(n)) for n in range(1, max(header.numbers) + 1)]
    return Cohort(keys, np.array(codes, dtype=np.int64), np.array(genders, dtype=object),
                  values[:len(keys)], semester_names, source, skipped, form.scale, groups)


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
    codes, counts = np.unique(cohort.college, return_counts=True)
    names = dict(zip(cohort.groups.codes, cohort.groups.names()))
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
        "scale": str(cohort.scale),
        "group_column": cohort.groups.column,
        "colleges": {names.get(int(c), str(c)): int(n) for c, n in zip(codes, counts)},
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
              f"scale: {info['scale']}",
              (f"groups ({info['group_column']}): " + ", ".join(f"{c}: {n}" for c, n in info["colleges"].items())
               if info["group_column"] else "groups: none (no group column)"),
              "gender: " + ", ".join(f"{g}: {n}" for g, n in info["genders"].items()),
              "semester   observed   mean    std"]
    for name, stats in info["per_semester"].items():
        lines.append(f"{name:<10} {stats['observed']:>8} {stats['mean']:>6.2f} {stats['std']:>6.2f}")
    for row in info["skipped_rows"]:
        lines.append(f"left out: line {row['line']} (student {row['student']}): {row['reason']}")
    return "\n".join(lines)
