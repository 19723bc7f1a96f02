"""A cohort of students and their semester grades, read from the wide results CSV.

The CSV has one row per student and one column per semester. Real files are messy
(data/README.md describes the shipped one): the roll number sits in one of several columns, roll numbers repeat
across colleges, gender has several spellings, grades can be blank anywhere. Every
cohort, real or synthetic, goes through `cohort_from_frame`, so there is one parser.
"""
from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data.errors import UserError
from data.sources import csv_source, describe_source

GRADE_MIN, GRADE_MAX = 0.0, 10.0
BLANK_CELLS = ("", "nan", "na", "n/a")
GENDERS = ("female", "male", "unknown")
_GENDER_SPELLINGS = {"female": "female", "f": "female", "male": "male", "m": "male", "": "unknown"}
# "1st".."8th", "sem1", "Semester 3", "s2": ordinal or prefixed semester numbers.
_SEMESTER_PATTERNS = (re.compile(r"^(\d+)(st|nd|rd|th)$", re.I), re.compile(r"^s(?:em(?:ester)?)?[\s_-]*(\d+)$", re.I))
COLLEGE_COLUMNS = ("college code", "college", "college_code")
_ROLL_COLUMNS = ("roll", "roll no.", "roll no", "roll_no", "roll number")


class DataError(UserError):
    """A user's data file is unusable; the message names the file, row and column."""


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

    def subset(self, index: np.ndarray) -> "Cohort":
        index = np.asarray(index)
        return Cohort([self.keys[i] for i in index], self.college[index], self.gender[index],
                      self.grades[index], self.semester_names, self.source)

    def students_with_gaps(self) -> list[str]:
        """Students with a blank semester before their last observed one."""
        observed = ~np.isnan(self.grades)
        last = np.where(observed.any(1), self.semesters - 1 - np.argmax(observed[:, ::-1], axis=1), -1)
        before_last = np.arange(self.semesters)[None, :] < last[:, None]
        return [k for k, gap in zip(self.keys, (before_last & ~observed).any(1)) if gap]


def load_csv(path: str | Path, semesters: list[str] | None = None) -> Cohort:
    """Read a results CSV; every problem is a DataError naming the file, line and column."""
    frame, sha256 = read_frame(path)
    return cohort_from_frame(frame, csv_source(path, sha256), semesters, where=str(path))


def read_frame(path: str | Path) -> tuple[pd.DataFrame, str]:
    """A CSV file as a frame of stripped strings (blank cells: ""), and the file's SHA-256."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a CSV of semester results)")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: the file is empty (expected a header row and one row per student)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a CSV text file (it is not UTF-8 text)") from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: not a readable CSV ({str(error).strip()})") from None
    return frame.rename(columns=str.strip), hashlib.sha256(raw).hexdigest()


def semester_columns(columns: list[str]) -> list[str]:
    """The semester columns of a header, ordered by semester number."""
    numbered = []
    for column in columns:
        for pattern in _SEMESTER_PATTERNS:
            match = pattern.match(column.strip())
            if match:
                numbered.append((int(match.group(1)), column))
    return [column for _, column in sorted(numbered)]


def find_column(columns: list[str], names: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c.strip().lower() in names]


def _clean_roll(value: str) -> str:
    # Rolls come as "17020.0" from spreadsheet exports; the student is 17020.
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def cohort_from_frame(frame: pd.DataFrame, source: dict, semesters: list[str] | None = None,
                      where: str = "data") -> Cohort:
    """Parse a frame of strings (one row per student) into a Cohort."""
    frame = frame.astype(str).rename(columns=str.strip)
    columns = list(frame.columns)
    if semesters:
        missing = [s for s in semesters if s not in columns]
        if missing:
            raise DataError(f"{where}: semester column(s) {missing} not in the header {columns}")
        sem_columns = list(semesters)
    else:
        sem_columns = semester_columns(columns)
    if not sem_columns:
        raise DataError(f"{where}: no semester columns found in the header {columns}; expected columns "
                        "named like 1st, 2nd, ... or sem1, sem2, ... (or pass --semesters)")
    college_columns = find_column(columns, COLLEGE_COLUMNS)
    if not college_columns:
        raise DataError(f"{where}: no 'College Code' column in the header {columns}")
    roll_columns = find_column(columns, _ROLL_COLUMNS)
    if not roll_columns:
        raise DataError(f"{where}: no roll-number column ('Roll' or 'Roll no.') in the header {columns}")
    gender_columns = find_column(columns, ("gender", "sex"))
    if len(frame) == 0:
        raise DataError(f"{where}: the file has a header but no student rows")

    keys, colleges, genders, rows, skipped, seen = [], [], [], [], [], {}
    for position, record in enumerate(frame.to_dict("records")):
        line = position + 2
        try:
            college = college_code(record[college_columns[0]])
        except ValueError as error:
            raise DataError(f"{where}, line {line}, column '{college_columns[0]}': {error}") from None
        rolls = [_clean_roll(record[c]) for c in roll_columns if record[c].strip()]
        if not rolls:
            raise DataError(f"{where}, line {line}: no roll number in {roll_columns}")
        key = f"{college}/{rolls[0]}"
        if key in seen:
            raise DataError(f"{where}, line {line}: student {key} (college/roll) appears twice, "
                            f"first on line {seen[key]}")
        seen[key] = line
        grades = []
        for column in sem_columns:
            try:
                grades.append(grade_value(record[column]))
            except ValueError as error:
                raise DataError(f"{where}, line {line}, column '{column}': {error}") from None
        if all(np.isnan(grades)):
            skipped.append(SkippedRow(line, key, "no grade in any semester"))
            continue
        spelling = record[gender_columns[0]].strip().lower() if gender_columns else ""
        if spelling not in _GENDER_SPELLINGS:
            raise DataError(f"{where}, line {line}, column '{gender_columns[0]}': unknown gender "
                            f"{record[gender_columns[0]]!r}; expected Male, M, Female, F or blank")
        keys.append(key)
        colleges.append(college)
        genders.append(_GENDER_SPELLINGS[spelling])
        rows.append(grades)
    if not rows:
        raise DataError(f"{where}: no student has any grade")
    return Cohort(keys, np.array(colleges, dtype=np.int64), np.array(genders, dtype=object),
                  np.array(rows, dtype=np.float32), [c.strip() for c in sem_columns], source, skipped)


def grade_value(value) -> float:
    """A grade from a CSV cell, a form field or a number: NaN when blank, else 0-10.

    Raises ValueError with what was expected; callers add where the value came from."""
    if value is None:
        return float("nan")
    text = str(value).strip()
    if text.lower() in BLANK_CELLS:
        return float("nan")
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"expected a grade point between 0 and 10 or blank, got {text!r}") from None
    if not GRADE_MIN <= number <= GRADE_MAX:
        raise ValueError(f"grade {number:g} is outside 0-10")
    return number


def college_code(value) -> int:
    """A college code: a non-negative integer, also when written as 115.0."""
    text = str(value).strip() if value is not None else ""
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"expected an integer college code, got {text!r}") from None
    if not number.is_integer() or not 0 <= number < 2 ** 53:
        raise ValueError(f"expected a non-negative integer college code, got {text!r}")
    return int(number)


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
