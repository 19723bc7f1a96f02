"""Cell values and header columns of the results format, read the same way everywhere.

Training data, batch scoring, form fields and the API all go through these functions:
a grade is a number in 0-10 or blank, a college code a non-negative integer, and a
semester column is recognised by the semester number in its name ("1st", "sem2",
"Semester 3"), never by its position in the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from cgpa_rnn.errors import DataError

GRADE_MIN, GRADE_MAX = 0.0, 10.0
BLANK_CELLS = ("", "nan", "na", "n/a")
_SEMESTER_PATTERNS = (re.compile(r"^(\d+)(st|nd|rd|th)$", re.I), re.compile(r"^s(?:em(?:ester)?)?[\s_-]*(\d+)$", re.I))
COLLEGE_NAMES = ("college code", "college", "college_code")
ROLL_NAMES = ("roll", "roll no.", "roll no", "roll_no", "roll number")
GENDER_NAMES = ("gender", "sex")


def preview(value, limit: int = 40) -> str:
    """A short quote of what a user sent, for messages: never the whole of a huge input."""
    text = str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def preview_columns(columns: list[str], count: int = 8) -> str:
    shown = ", ".join(preview(c, 24) for c in columns[:count])
    return f"[{shown}{f', ... {len(columns)} columns in all' if len(columns) > count else ''}]"


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
        raise ValueError(f"expected a grade point between 0 and 10 or blank, got {preview(text)}") from None
    if not GRADE_MIN <= number <= GRADE_MAX:
        raise ValueError(f"grade {number:g} is outside 0-10")
    return number


def college_code(value) -> int:
    """A college code: a non-negative integer, also when written as 115.0."""
    text = str(value).strip() if value is not None else ""
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"expected an integer college code, got {preview(text)}") from None
    if not number.is_integer() or not 0 <= number < 2 ** 53:
        raise ValueError(f"expected a non-negative integer college code, got {preview(text)}")
    return int(number)


def semester_name(number: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', as the shipped file names its columns."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def semester_number(column: str) -> int | None:
    """3 for '3rd', 'sem3' or 'Semester 3'; None for any other column."""
    for pattern in _SEMESTER_PATTERNS:
        match = pattern.match(column.strip())
        if match:
            return int(match.group(1))
    return None


@dataclass(frozen=True)
class Header:
    """Which column holds what. semesters[k] holds semester numbers[k], in semester order."""

    semesters: list[str]
    numbers: list[int]
    college: str | None
    rolls: list[str]
    gender: str | None


def _named(columns: list[str], names: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c.strip().lower() in names]


def read_header(columns: list[str], where: str, semesters: list[str] | None = None) -> Header:
    """Find the columns of a header; `semesters` names the semester columns 1..N explicitly."""
    if semesters:
        missing = [s for s in semesters if s not in columns]
        if missing:
            raise DataError(f"{where}: semester column(s) {preview_columns(missing)} not in the header "
                            f"{preview_columns(columns)}")
        numbered = list(enumerate(semesters, start=1))
    else:
        numbered = sorted((semester_number(c), c) for c in columns if semester_number(c) is not None)
    if not numbered:
        raise DataError(f"{where}: no semester columns found in the header {preview_columns(columns)}; "
                        "expected columns named like 1st, 2nd, ... or sem1, sem2, ... (or pass --semesters)")
    for (number, column), (next_number, next_column) in zip(numbered, numbered[1:]):
        if number == next_number:
            raise DataError(f"{where}: columns {preview(column, 24)} and {preview(next_column, 24)} are both "
                            f"semester {number}")
    college, gender = _named(columns, COLLEGE_NAMES), _named(columns, GENDER_NAMES)
    return Header([c for _, c in numbered], [n for n, _ in numbered], college[0] if college else None,
                  _named(columns, ROLL_NAMES), gender[0] if gender else None)
