"""Scoring a cohort CSV with one or more backends, a column at a time.

A row that cannot be scored (a bad grade, no grade, a bad college code) gets its reason
in the `error` column; it never stops the other rows. Semester columns are placed by their
number, so a file with only `2nd,3rd` is read as semesters 2 and 3. A student whose final
semester is known is scored by hindcast: that semester is predicted from the earlier ones
and compared with the known grade (`actual`, `abs_error`); `hindcast_last_given` does the same for
every student's last known semester. With `trajectory`, every row also gets the rest of its degree
from all the grades it gives (cgpa_rnn.trajectory): each later semester's forecast, the final CGPA
and the chance of ending below a line (trajectory_columns). Each row means what Predictor.question
makes of it (the rows refused get its message), and the CSV holds numbers to six significant
digits and text a spreadsheet will not run (csv_cells). Used by the demo's cohort tab and
`cgpa predict --csv`, which streams a file of any length through here a block at a time
(cgpa_rnn.streaming).
"""
from __future__ import annotations

import csv
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgpa_rnn.errors import DataError
from cgpa_rnn.metadata import DEFAULT_INTERVAL_LEVEL
from cgpa_rnn.predictor import Predictor
from cgpa_rnn.questions import ask_table
from cgpa_rnn.rules import inside_interval, last_observed
from cgpa_rnn.rundir import atomic_path
from cgpa_rnn.table import Limits, LongLayout, Table, read_table, widen
from cgpa_rnn.trajectory import OUTPUTS as TRAJECTORY_OUTPUTS
from cgpa_rnn.values import (
    AUTO_GROUP,
    COLLEGE_NAMES,
    WHITESPACE,
    Header,
    find_group_column,
    preview_columns,
    read_header,
    require_college,
    semester_number,
)

ADDED_COLUMNS = ("semester_predicted", "pred_torch", "pred_onnx", "abs_diff", "low", "high", "actual", "abs_error",
                 "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FINAL_COLUMNS = ("final_cgpa", "final_low", "final_high", "p_below")
NUMBER = "%.6g"  # how the CSV writes a number: six significant digits


def trajectory_columns(semesters: int) -> list[str]:
    """The trajectory's columns for a model of `semesters`: each semester that can be forecast (2..S), then the
    final CGPA and the probability of ending below the line (the browser page writes the same ones)."""
    return [f"sem{k}_{part}" for k in range(2, semesters + 1) for part in ("pred", "low", "high")] + list(FINAL_COLUMNS)


def served(by_backend: dict):
    """Of values per backend (predictors, outputs), those of the runtime that serves: onnx when present."""
    return by_backend.get("onnx", next(iter(by_backend.values())))


@dataclass
class ScoredTable:
    table: Table
    seen: np.ndarray  # float32 [N, S]: what the model saw of each row, NaN for missing
    semester: np.ndarray  # int [N], 0 where the row was not scored
    actual: np.ndarray  # float [N]: the predicted semester's known grade for a hindcast, else NaN
    predictions: dict[str, np.ndarray]  # backend name -> float [N], NaN where not scored
    low: np.ndarray  # the interval of the runtime that serves (onnx when present)
    high: np.ndarray
    errors: list[str]
    training_file: bool = False  # the file is the one the model was trained on: its hindcasts are in-sample
    interval_level: float = DEFAULT_INTERVAL_LEVEL  # of the runtime that serves
    header: Header | None = None  # which of the table's columns the model read
    codes: np.ndarray | None = None  # int64 [N]: each row's group code as the model reads it (0 where not scored)
    ahead: dict[str, np.ndarray] | None = None  # the rest of each degree (cgpa_rnn.trajectory.OUTPUTS), if asked
    below: float | None = None  # the line of ahead's probability_below

    @property
    def finished(self) -> np.ndarray:
        """[N] the rows with every semester known: their final CGPA is an outcome, its interval closed
        (none without the trajectory)."""
        if self.ahead is None:
            return np.zeros(len(self.errors), dtype=bool)
        return self.ok & (self.ahead["final_low"] == self.ahead["final_high"])

    def risk_sentence(self, emphasis: str = "") -> str:
        """How many whose final CGPA is forecast are likelier than not to end below the line (that clause
        between `emphasis`, "**" for Markdown), and how many finished below it (the graph's own comparison,
        in float32: a CGPA at the line is not below it)."""
        studying, finished = self.ok & ~self.finished, self.finished
        chance = self.ahead["probability_below"]
        count, likely = int(studying.sum()), int((studying & (chance > 0.5)).sum())
        ended = int((finished & (chance == 1)).sum())
        return (f"{emphasis}{likely} of the {count} student{'' if count == 1 else 's'} whose final CGPA is forecast "
                f"{'is' if likely == 1 else 'are'} more likely than not to end below {self.below:g}{emphasis} (p_below "
                f"> 0.5); {ended} of the {int(finished.sum())} with nothing left to forecast ended below it")

    def warning(self, model: Predictor) -> str | None:
        """Predictor.unfamiliar over the grades of the rows scored."""
        return model.unfamiliar(self.seen[self.ok]) if self.ok.any() else None

    @property
    def ok(self) -> np.ndarray:
        return np.array([not e for e in self.errors], dtype=bool)

    @property
    def served(self) -> np.ndarray:
        """The prediction of the runtime that serves: onnx when present."""
        return served(self.predictions)

    @property
    def abs_diff(self) -> np.ndarray:
        if {"torch", "onnx"} <= self.predictions.keys():
            return np.abs(self.predictions["torch"] - self.predictions["onnx"])
        return np.full(len(self.errors), np.nan)

    @property
    def hindcast(self) -> np.ndarray:
        return ~np.isnan(self.actual)

    def columns(self) -> list[str]:
        ahead = trajectory_columns(self.seen.shape[1]) if self.ahead is not None else []
        return self.table.columns + list(ADDED_COLUMNS) + ahead

    def students(self) -> list[str]:
        """Each row's student as the file names them (its ID, else its line)."""
        return [self.header.student(line, record) for line, record in self.table.records()]

    def _numbers(self) -> list[np.ndarray]:
        """The added columns that hold numbers, in the CSV's order (NaN: empty): pred_torch to abs_error, then the
        rest of each degree (sem2_pred, sem2_low, ..., then the final CGPA's)."""
        missing = np.full(len(self.errors), np.nan)
        numbers = [self.predictions.get("torch", missing), self.predictions.get("onnx", missing), self.abs_diff,
                   self.low, self.high, self.actual, np.abs(self.actual - self.served)]
        if self.ahead is not None:
            numbers += [self.ahead[name][:, k] for k in range(1, self.seen.shape[1]) for name in TRAJECTORY_OUTPUTS[:3]]
            numbers += [self.ahead[name] for name in TRAJECTORY_OUTPUTS[3:]]
        return numbers

    def rows(self) -> list[list]:
        """The input cells, then the added columns (None where empty)."""
        numbers = [[None if np.isnan(v) else v for v in column.tolist()] for column in self._numbers()]
        semester = [s or None for s in self.semester.tolist()]
        return [[*cells, semester[i], *(c[i] for c in numbers[:7]), self.errors[i], *(c[i] for c in numbers[7:])]
                for i, cells in enumerate(self.table.rows)]

    def csv_rows(self):
        """The rows as the CSV holds them (csv_cells of rows()), made a column at a time."""
        numbers = [number_cells(column) for column in self._numbers()]
        semester = ["" if s == 0 else str(s) for s in self.semester.tolist()]
        cells = [text_cells(column) for column in self.table.column_cells()]
        return zip(*cells, semester, *numbers[:7], text_cells(self.errors), *numbers[7:])


@dataclass(frozen=True)
class HindcastSummary:
    """How close the model came on the students scored by hindcast."""
    students: int
    mae: float
    persistence_mae: float  # of repeating each student's previous known semester, for scale
    coverage: float  # share of actual grades inside the interval
    in_sample: bool  # these students were in the model's training data
    interval_level: float = DEFAULT_INTERVAL_LEVEL

    @classmethod
    def of(cls, scored: ScoredTable) -> HindcastSummary | None:
        tally = HindcastTally()
        tally.add(scored.served, scored.low, scored.high, scored.actual, scored.seen)
        return tally.summary(scored.training_file, scored.interval_level)

    def text(self) -> str:
        caveat = (" These students are the model's own training data, so this is in-sample: expect larger "
                  "errors on a new cohort (the model card gives the cross-validated error)." if self.in_sample else "")
        students = f"{self.students} student{'' if self.students == 1 else 's'}"
        return (f"Hindcast of {students} (a known semester predicted from the earlier ones): mean"
                f" absolute error {self.mae:.2f} grade points (repeating the previous semester: "
                f"{self.persistence_mae:.2f}); the {self.interval_level:.0%} interval held {self.coverage:.0%} of the "
                f"actual grades.{caveat}")


class HindcastTally:
    """Sums for HindcastSummary, added to part by part (a streamed file never holds all rows)."""

    def __init__(self):
        self.students, self.error, self.persistence_error, self.inside = 0, 0.0, 0.0, 0

    def add(self, prediction, low, high, actual, seen) -> None:
        rows = ~np.isnan(actual)
        if not rows.any():
            return
        actual, seen = actual[rows], seen[rows]
        previous = seen[np.arange(len(seen)), last_observed(~np.isnan(seen))]  # every hindcast row has one
        self.students += int(rows.sum())
        self.error += float(np.abs(prediction[rows] - actual).sum())
        self.persistence_error += float(np.abs(previous - actual).sum())
        self.inside += int(inside_interval(low[rows], actual, high[rows]).sum())

    def summary(self, in_sample: bool, interval_level: float) -> HindcastSummary | None:
        if not self.students:
            return None
        return HindcastSummary(self.students, self.error / self.students, self.persistence_error / self.students,
                               self.inside / self.students, in_sample, interval_level)


def scoring_header(columns: list[str], where: str, model: Predictor) -> Header:
    """The header of a file to score with `model`. Its semester columns are found by the model's own
    semester names when the model was trained on named columns (G1, G2, G3; Fall 2024, ...), else by the
    semester number in their names; its group column is the model's."""
    names, semesters = model.semester_names, model.semesters
    column = model.groups.column
    group = None if column is None else AUTO_GROUP if column.lower() in COLLEGE_NAMES else column
    numbered_names = all(semester_number(n) == k + 1 for k, n in enumerate(names))
    named = [n for n in names if n in {c.strip(WHITESPACE) for c in columns}]
    if numbered_names or not named:
        header = read_header(columns, where, group=None)
    else:
        header = read_header(columns, where, named, group=None)
        header = Header(header.semesters, [names.index(c) + 1 for c in header.semesters], None, header.rolls,
                        header.gender)
    unknown = [c for c, n in zip(header.semesters, header.numbers) if n > semesters]
    if unknown:
        raise DataError(f"{where}: column(s) {preview_columns(unknown)} name semesters the model does not know "
                        f"(it knows semesters 1-{semesters})")
    header = Header(header.semesters, header.numbers, find_group_column(columns, group, where), header.rolls,
                    header.gender)
    if column is not None:
        require_college(header, columns, where, column)
    return header


def score_table(table: Table, backends: dict[str, Predictor], hindcast_last_given: bool = False,
                trajectory: bool = False, below=None, credits: np.ndarray | None = None) -> ScoredTable:
    """`backends` maps 'torch'/'onnx' to predictors of the same model. `trajectory`: add the rest of each
    degree, with the chance of ending below `below` (default: the scale's line; `credits` weight the semesters)."""
    reference = next(iter(backends.values()))
    header = scoring_header(table.columns, table.where, reference)
    if len(table) == 0:
        raise DataError(f"{table.where}: the file has a header but no student rows")
    asked = ask_table(table, header, reference, hindcast_last_given)
    ok = asked.semester > 0
    outputs = {name: np.full((3, len(table)), np.nan) for name in backends}
    if ok.any():  # a file where no row can be scored still gets every row's reason
        for name, backend in backends.items():
            outputs[name][:, ok] = backend.predict_batch(asked.seen[ok], asked.codes[ok])
    interval = served(outputs)
    scored = ScoredTable(table, asked.seen, asked.semester, asked.actual,
                         {name: output[0] for name, output in outputs.items()}, interval[1], interval[2],
                         asked.errors, interval_level=served(backends).interval_level, header=header,
                         codes=asked.codes)
    if trajectory:
        scored.below = served(backends).risk_line(below)
        scored.ahead = rest_of_degree(served(backends), scored, credits)
    return scored


def rest_of_degree(model: Predictor, scored: ScoredTable, credits: np.ndarray | None) -> dict[str, np.ndarray]:
    """The trajectory outputs of every row scored, from all the grades it gives (a hindcast's hidden
    semester put back); NaN for the rows with an error."""
    given = scored.seen.copy()
    rows = np.flatnonzero(scored.hindcast)
    given[rows, scored.semester[rows] - 1] = scored.actual[rows]
    ok = scored.ok
    width = {name: (given.shape[1],) if name.startswith("trajectory") else () for name in TRAJECTORY_OUTPUTS}
    ahead = {name: np.full((len(ok), *width[name]), np.nan) for name in TRAJECTORY_OUTPUTS}
    if ok.any():
        outputs = model.detail_batch(given[ok], scored.codes[ok], credits, scored.below)
        for name in TRAJECTORY_OUTPUTS:
            ahead[name][ok] = outputs[name]
    return ahead


def score_csv(path: str | Path, backends: dict[str, Predictor], limits: Limits = Limits(),
              name: str | None = None, hindcast_last_given: bool = False, long: LongLayout | None = None,
              **trajectory) -> ScoredTable:
    """A cohort file scored whole; `long`: one row per student and term, widened first (its term
    columns are then found like any semester columns, by the model's names or their numbers);
    `trajectory`: score_table's trajectory, below and credits."""
    table = read_table(path, limits, name)
    if long is not None:
        table, _ = widen(table, long)
    scored = score_table(table, backends, hindcast_last_given, **trajectory)
    scored.training_file = table.sha256 == next(iter(backends.values())).training_data_sha256
    return scored


def spreadsheet_safe(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_cells(row: list) -> list:
    """A scored row as the CSV holds it: numbers to six significant digits, text spreadsheet-safe."""
    return [NUMBER % v if isinstance(v, float) else spreadsheet_safe("" if v is None else v) for v in row]


def text_cells(cells):
    """spreadsheet_safe of a column of text. A few searches of the joined column tell whether any cell needs it
    (a cell holds no NUL: a file with one is refused), so most columns are written as they are."""
    joined = "\0" + "\0".join(cells)
    return list(map(spreadsheet_safe, cells)) if any("\0" + s in joined for s in FORMULA_STARTS) else cells


def number_cells(values: np.ndarray) -> list[str]:
    """csv_cells of a column of numbers (NaN: empty), formatted by one % over the column: a loop in C."""
    cells = np.full(len(values), "", dtype=object)
    known = np.flatnonzero(~np.isnan(values))
    cells[known] = (f"{NUMBER}\n" * len(known) % tuple(values[known].tolist())).split("\n")[:-1]
    return cells.tolist()


@contextmanager
def csv_writer(path: str | Path, columns: list[str]):
    """A csv.writer of a file a spreadsheet opens safely, its header written; the file appears whole or not at all."""
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(csv_cells(columns))
        yield writer


def write_scored_csv(scored: ScoredTable, path: str | Path) -> None:
    with csv_writer(path, scored.columns()) as writer:
        writer.writerows(scored.csv_rows())


def write_rows(path: str | Path, columns: list[str], rows) -> None:
    """Rows of values as csv_cells writes them, atomically."""
    with csv_writer(path, columns) as writer:
        writer.writerows(map(csv_cells, rows))
