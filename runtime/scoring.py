"""Scoring a cohort CSV with one or more backends, row by row.

A row that cannot be scored (a bad grade, nothing to predict, a bad college code) gets
its reason in the `error` column; it never stops the other rows. Semester columns are
placed by their number, so a file with only `2nd,3rd` is read as semesters 2 and 3.
Used by `cgpa predict --csv` and by the demo's cohort tab.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import DataError
from runtime.predictor import PredictionError, Predictor
from runtime.rundir import atomic_path
from runtime.table import Limits, Table, read_table
from runtime.values import preview_columns, read_header

ADDED_COLUMNS = ("semester_predicted", "pred_torch", "pred_onnx", "abs_diff", "low", "high", "error")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ScoredTable:
    table: Table
    semester: np.ndarray  # int [N], 0 where the row was not scored
    predictions: dict[str, np.ndarray]  # backend name -> float [N], NaN where not scored
    low: np.ndarray  # the interval of the runtime that serves (onnx when present)
    high: np.ndarray
    errors: list[str]

    @property
    def ok(self) -> np.ndarray:
        return np.array([not e for e in self.errors], dtype=bool)

    @property
    def served(self) -> np.ndarray:
        """The prediction of the runtime that serves: onnx when present."""
        return self.predictions.get("onnx", next(iter(self.predictions.values())))

    @property
    def abs_diff(self) -> np.ndarray:
        if {"torch", "onnx"} <= self.predictions.keys():
            return np.abs(self.predictions["torch"] - self.predictions["onnx"])
        return np.full(len(self.errors), np.nan)

    def columns(self) -> list[str]:
        return self.table.columns + list(ADDED_COLUMNS)

    def rows(self) -> list[list]:
        """The input cells, then the added columns (None where empty)."""
        numbers = [self.predictions.get("torch"), self.predictions.get("onnx"), self.abs_diff, self.low, self.high]
        rows = []
        for i, cells in enumerate(self.table.rows):
            semester = int(self.semester[i]) if self.semester[i] else None
            values = [None if column is None or np.isnan(column[i]) else float(column[i]) for column in numbers]
            rows.append(cells + [semester, *values, self.errors[i]])
        return rows


def score_table(table: Table, backends: dict[str, Predictor]) -> ScoredTable:
    """`backends` maps 'torch'/'onnx' to predictors of the same model."""
    reference = next(iter(backends.values()))
    header = read_header(table.columns, table.where)
    if len(table) == 0:
        raise DataError(f"{table.where}: the file has a header but no student rows")
    unknown = [c for c, n in zip(header.semesters, header.numbers) if n > reference.semesters]
    if unknown:
        raise DataError(f"{table.where}: column(s) {preview_columns(unknown)} name semesters the model does not know "
                        f"(it knows semesters 1-{reference.semesters})")
    if header.college is None:
        raise DataError(f"{table.where}: no 'College Code' column in the header {preview_columns(table.columns)}")
    count = len(table)
    grades = np.full((count, reference.semesters), np.nan, dtype=np.float32)
    codes = np.zeros(count, dtype=np.int64)
    errors = [""] * count
    for i, (line, record) in enumerate(table.records()):
        values = [""] * reference.semesters
        for column, number in zip(header.semesters, header.numbers):
            values[number - 1] = record[column]
        try:
            grades[i], codes[i] = reference.validate(values, record[header.college])
        except PredictionError as error:
            errors[i] = f"line {line}: {error}"
    ok = np.array([not e for e in errors], dtype=bool)
    semester = np.zeros(count, dtype=np.int64)
    observed = ~np.isnan(grades[ok])
    semester[ok] = reference.semesters - np.argmax(observed[:, ::-1], axis=1) + 1
    outputs = {name: np.full((3, count), np.nan) for name in backends}
    if ok.any():  # a file where no row can be scored still gets every row's reason
        for name, backend in backends.items():
            outputs[name][:, ok] = backend.predict_batch(grades[ok], codes[ok])
    served = outputs.get("onnx", next(iter(outputs.values())))
    return ScoredTable(table, semester, {name: output[0] for name, output in outputs.items()},
                       served[1], served[2], errors)


def score_csv(path: str | Path, backends: dict[str, Predictor], limits: Limits = Limits(),
              name: str | None = None) -> ScoredTable:
    return score_table(read_table(path, limits, name), backends)


def spreadsheet_safe(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_scored_csv(scored: ScoredTable, path: str | Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([spreadsheet_safe(c) for c in scored.columns()])
        for row in scored.rows():
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else spreadsheet_safe("" if v is None else v)
                             for v in row])
