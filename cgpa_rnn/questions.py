"""Predictor.question for every row of a table at once, a column at a time.

Scoring a file asks each row what question() asks a form: each cell is read by the rule
question() reads it with (grade_value, Groups.code), once per distinct cell, and question()'s
rules about a row (at least one grade, a readable group code, an earlier grade for a hindcast)
are array operations. A row refused is asked again through question() itself, so its message
is question()'s. tests/test_hostile_cli.py holds the two to the same answers on random messy rows.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from cgpa_rnn.predictor import PredictionError, Predictor
from cgpa_rnn.rules import last_observed
from cgpa_rnn.table import Table
from cgpa_rnn.values import Header, grade_value


class _Cells(dict):
    """What a cell rule makes of each distinct cell, worked out once: a column repeats few values (grades to
    two decimals, a handful of colleges). A cell the rule refuses reads as `refused`."""

    def __init__(self, rule, refused: float):
        super().__init__()
        self.rule, self.refused = rule, refused

    def __missing__(self, cell: str) -> float:
        try:
            value = float(self.rule(cell))
        except ValueError:
            value = self.refused
        self[cell] = value
        return value

    def column(self, cells) -> np.ndarray:
        return np.fromiter(map(self.__getitem__, cells), np.float64, len(cells))


@dataclass
class Questions:
    seen: np.ndarray  # float32 [N, S], NaN for missing and for the rows refused
    codes: np.ndarray  # int64 [N], 0 for the rows refused
    semester: np.ndarray  # int [N], 0 for the rows refused
    actual: np.ndarray  # float [N]: a hindcast's known grade, else NaN
    errors: list[str]  # each row's reason, "" for the rows asked


def ask_table(table: Table, header: Header, model: Predictor, hindcast_last_given: bool) -> Questions:
    """What question() makes of each row (its semester columns and group column as `header` finds them);
    a row refused gets question()'s message after its line ("line N: ...")."""
    count, semesters = len(table), model.semesters
    cells = table.column_cells()
    index = {column: k for k, column in enumerate(table.columns)}  # a repeated name: its last column, as records()
    grades = np.full((count, semesters), np.nan)
    grade = _Cells(partial(grade_value, scale=model.scale), np.inf)  # no grade reads as inf: it is refused
    for column, number in zip(header.semesters, header.numbers):
        grades[:, number - 1] = grade.column(cells[index[column]])
    codes = _Cells(model.groups.code, np.nan).column(cells[index[header.college]] if header.college else ("",) * count)
    observed = ~np.isnan(grades)
    last = last_observed(observed)
    hindcast = (last == semesters - 1) | hindcast_last_given  # the last grade given is predicted
    ok = (~np.isinf(grades).any(1) & observed.any(1) & ~np.isnan(codes)
          & ~(hindcast & (observed.sum(1) == 1)))
    seen = np.where(ok[:, None], grades, np.nan).astype(np.float32)
    rows = np.flatnonzero(ok & hindcast)
    actual = np.full(count, np.nan)
    actual[rows] = seen[rows, last[rows]]
    seen[rows, last[rows]] = np.nan
    semester = np.where(ok, np.where(hindcast, last + 1, last + 2), 0)
    errors = [""] * count
    refusals: dict[tuple, str] = {}
    for i in np.flatnonzero(~ok).tolist():
        line, record = table.lines[i], dict(zip(table.columns, table.rows[i]))
        values = [""] * semesters
        for column, number in zip(header.semesters, header.numbers):
            values[number - 1] = record[column]
        given = (tuple(values), record[header.college] if header.college else "")
        if given not in refusals:
            refusals[given] = _refusal(model, *given, hindcast_last_given)
        errors[i] = f"line {line}: {refusals[given]}"
    return Questions(seen, np.where(ok, codes, 0).astype(np.int64), semester, actual, errors)


def _refusal(model: Predictor, grades: tuple, college: str, hindcast_last_given: bool) -> str:
    try:
        model.question(list(grades), college, hindcast_last_given)
    except PredictionError as error:
        return str(error)
    raise AssertionError(f"scoring refused grades {grades} and college {college!r} that Predictor.question takes")
