r"""Cell values and header columns of the results format, read the same way everywhere.

Training data, batch scoring, form fields and the API all go through these functions:
a grade is a number on the cohort's scale (cgpa_rnn.encoding.Scale) or blank, a group
code an integer or a text label (cgpa_rnn.encoding.Groups), and a semester column is
recognised by the semester number in its name ("1st", "sem2", "Semester 3") or named
explicitly (`--semesters G1,G2,G3`), never by its position in the file.

Numbers are ASCII decimal notation and nothing else, the same rule in the CLI, the demo
and the static page (which mirrors it in JavaScript). After removing surrounding ASCII
whitespace (space, tab, CR, LF), a number matches

    ^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$

so `7`, `7.25`, `.5`, `7.` are numbers and `1e1`, `inf`, `0x10`, `1_0`, `٣` (a non-ASCII
digit) and `７` are not. A grade cell is missing when it is empty or one of `nan`, `na`,
`n/a` in any case (BLANK_CELLS); a college code is a number with no fractional part
(`115` or `115.0`). In a semicolon-separated file a decimal comma (`12,5`) is a decimal
point; cgpa_rnn.table rewrites it when it reads the cell.
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

import numpy as np

from cgpa_rnn.encoding import DEFAULT_SCALE, Scale
from cgpa_rnn.errors import DataError

BLANK_CELLS = ("", "nan", "na", "n/a")
WHITESPACE = " \t\r\n"  # what is trimmed around a cell or a field, in every runtime
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")  # used with fullmatch: the rule above
SEMESTER_LIMIT = 20  # semester numbers a header may name: 1..SEMESTER_LIMIT
_SEMESTER_PATTERNS = (re.compile(r"^([0-9]+)(st|nd|rd|th)$", re.I),
                      re.compile(r"^s(?:em(?:ester)?)?[ _-]*([0-9]+)$", re.I))
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")
COLLEGE_NAMES = ("college code", "college", "college_code")  # the group column found without --group
AUTO_GROUP = "auto"  # read_header's default: a college column if the header has one, else no group
ROLL_NAMES = ("roll", "roll no.", "roll no", "roll_no", "roll number", "id", "student id", "student_id", "studentid",
              "student number", "student_number")
GENDER_NAMES = ("gender", "sex")


def preview(value, limit: int = 40) -> str:
    """A short quote of what a user sent, for messages: never the whole of a huge input."""
    text = str(value)
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} characters)"


def preview_columns(columns: list[str], count: int = 8) -> str:
    shown = ", ".join(preview(c, 24) for c in columns[:count])
    return f"[{shown}{f', ... {len(columns)} columns in all' if len(columns) > count else ''}]"


def _number(value) -> float | None:
    """The number a value holds under the decimal rule, or None. Numbers given as numbers
    (from a program or the API) are taken as they are, except booleans; NaN is kept."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return float(value)
    text = str(value).strip(WHITESPACE)
    return float(text) if DECIMAL.fullmatch(text) else None


def grade_value(value, scale: Scale = DEFAULT_SCALE) -> float:
    """A grade from a CSV cell, a form field or a number: NaN when blank, else a number on `scale`.

    Raises ValueError with what was expected; callers add where the value came from."""
    if value is None or (isinstance(value, str) and value.strip(WHITESPACE).lower() in BLANK_CELLS):
        return float("nan")
    number = _number(value)
    if number is None or math.isinf(number):
        raise ValueError(f"expected a grade point on the {scale} scale (like {scale.high * 0.7:g}) or blank, "
                         f"got {preview(value)}")
    if not scale.contains(number) and not math.isnan(number):
        raise ValueError(f"grade {number:g} is outside {scale}, the scale in use ({scale.fitting(number)})")
    return number


def integer_code(value, what: str = "college code") -> int:
    """An integer group code: a non-negative integer, also when written as 115.0."""
    number = None if value is None else _number(value)
    if number is None:
        raise ValueError(f"expected an integer {what} (like 115), got {preview('' if value is None else value)}")
    if not number.is_integer() or not 0 <= number < 2 ** 53:
        raise ValueError(f"expected a non-negative integer {what} below 2**53, got {preview(value)}")
    return int(number)


def boolean_value(value) -> bool:
    """A yes/no field from a form, the API or a CSV: a bool, or true/false, yes/no, 1/0, on/off
    in any case. Anything else (a blank, "maybe", 2) is refused, never taken as true."""
    if isinstance(value, bool):
        return value
    text = str(value).strip(WHITESPACE).lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected true or false (or yes/no, 1/0, on/off), got {preview(value)}")


def parse_bool(value, field: str) -> bool:
    """boolean_value for a named field (an API parameter, a form's checkbox): the one-line
    error names the field."""
    try:
        return boolean_value(value)
    except ValueError as error:
        raise DataError(f"{field}: {error}") from None


def semester_name(number: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', as the shipped file names its columns."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def semester_number(column: str) -> int | None:
    """3 for '3rd', 'sem3' or 'Semester 3'; None for any other column. A number of more digits
    than any limit reads as SEMESTER_LIMIT + 1 (never converted: int() of 5,000 digits fails)."""
    for pattern in _SEMESTER_PATTERNS:
        match = pattern.match(column.strip(WHITESPACE))
        if match:
            digits = match.group(1).lstrip("0") or "0"
            return int(digits) if len(digits) <= 6 else SEMESTER_LIMIT + 1
    return None


def clean_roll(value: str) -> str:
    """A student ID as people write it: rolls come as "17020.0" from spreadsheet exports; the student is 17020."""
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


@dataclass(frozen=True)
class Header:
    """Which column holds what. semesters[k] holds semester numbers[k], in semester order."""

    semesters: list[str]
    numbers: list[int]
    college: str | None  # the group column (a college, a school...), None when there is none
    rolls: list[str]  # the ID columns (a file may file its IDs under more than one)
    gender: str | None

    def student(self, line: int, record: dict) -> str:
        """How a row's student is named to people: "group/ID" (IDs repeat across groups: the shipped
        data has roll 17020 at three colleges), the ID alone without a group, else its line."""
        rolls = [clean_roll(record[c]) for c in self.rolls if record.get(c)]
        if not rolls:
            return f"line {line}"
        group = clean_roll(record[self.college]) if self.college and record.get(self.college) else ""
        return f"{group}/{rolls[0]}" if group else rolls[0]


def _named(columns: list[str], names: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c.strip(WHITESPACE).lower() in names]


def _one(columns: list[str], names: tuple[str, ...], what: str, where: str) -> str | None:
    found = _named(columns, names)
    if len(found) > 1:
        raise DataError(f"{where}: {len(found)} {what} columns ({', '.join(preview(c, 24) for c in found)}); "
                        f"keep one")
    return found[0] if found else None


def require_college(header: Header, columns: list[str], where: str, name: str = "College Code") -> None:
    """A file to score with a model that has a group column needs that column."""
    if header.college is None:
        raise DataError(f"{where}: no {name!r} column in the header {preview_columns(columns)}")


def find_group_column(columns: list[str], group: str | None, where: str) -> str | None:
    if group is None:
        return None
    if group == AUTO_GROUP:
        return _one(columns, COLLEGE_NAMES, "college", where)
    found = _named(columns, (group.strip(WHITESPACE).lower(),))
    if not found:
        raise DataError(f"{where}: no group column {preview(group, 24)} in the header {preview_columns(columns)}")
    return found[0]


def read_header(columns: list[str], where: str, semesters: list[str] | None = None,
                group: str | None = AUTO_GROUP) -> Header:
    """Find the columns of a header; `semesters` names the semester columns 1..N explicitly; `group`
    names the group column (AUTO_GROUP: a college column if there is one; None: no group).

    Semester numbers are checked against 1..SEMESTER_LIMIT here, before any row is read, so a header
    naming semester 99999999999 costs nothing."""
    if semesters:
        missing = [s for s in semesters if s not in columns]
        if missing:
            raise DataError(f"{where}: semester column(s) {preview_columns(missing)} not in the header "
                            f"{preview_columns(columns)}")
        numbered = list(enumerate(semesters, start=1))
    else:
        numbered = sorted((semester_number(c), c) for c in columns if semester_number(c) is not None)
    for number, column in numbered:
        if number < 1:
            raise DataError(f"{where}: column {preview(column, 24)} names semester 0; semesters are numbered from 1 "
                            "(1st, sem1, ...)")
        if number > SEMESTER_LIMIT:
            raise DataError(f"{where}: column {preview(column, 24)} names a semester past the limit of "
                            f"{SEMESTER_LIMIT} (semesters 1-{SEMESTER_LIMIT} are read)")
    if not numbered:
        raise DataError(f"{where}: no semester columns found in the header {preview_columns(columns)}; "
                        "expected columns named like 1st, 2nd, ... or sem1, sem2, ...")
    for (number, column), (next_number, next_column) in zip(numbered, numbered[1:]):
        if number == next_number:
            raise DataError(f"{where}: columns {preview(column, 24)} and {preview(next_column, 24)} are both "
                            f"semester {number}")
    college, gender = find_group_column(columns, group, where), _one(columns, GENDER_NAMES, "gender", where)
    return Header([c for _, c in numbered], [n for n, _ in numbered], college, _named(columns, ROLL_NAMES), gender)
